#pragma once
// Per-key statistics of chunk attention that the score-based pruners share (spec §2, §12.1,
// §12.2): column sums over the scoring queries and the causal normaliser.
// Thread-safety: free functions without state. All may throw c10::Error (callers run them
// inside TorchCall).

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace ctxmem::compress {

// Sums per-query-head attention [n_heads, n_rows, n_cols] into kv heads
// [n_kv_heads, n_rows, n_cols]: query head h belongs to kv head h / (n_heads / n_kv_heads), the
// models' own grouping (§12.2, not the seed's h mod n_kv). Precondition: n_heads % n_kv_heads == 0.
at::Tensor FoldQueryHeads(const at::Tensor& attention, int64_t n_kv_heads);

// Number of scoring queries that can see each scored column (§2 "causal normalization", with
// §12.1's rows): the columns are [memory (n_memory_cols) ; chunk candidates (n_chunk)], the
// scoring rows are the last n_rows queries of the chunk and the chunk candidates are its last
// n_chunk tokens. Memory columns: n_rows; chunk column k: min(n_rows, n_chunk - k).
// Returns [n_memory_cols + n_chunk] fp32 on `device`, every entry >= 1 when n_rows >= 1.
at::Tensor CausalQueryCounts(int64_t n_memory_cols, int64_t n_chunk, int64_t n_rows,
                             c10::Device device);

// Sum of attention each column receives over the rows: [n_kv_heads, n_rows, n_cols] ->
// [n_kv_heads, n_cols] fp32 (H2O's accumulated score, §3.1).
at::Tensor ColumnSums(const at::Tensor& scores);

// §2 mean attention: ColumnSums(scores) / counts, counts from CausalQueryCounts.
// [n_kv_heads, n_rows, n_memory_cols + n_chunk] -> [n_kv_heads, n_memory_cols + n_chunk] fp32.
at::Tensor CausalMeanScores(const at::Tensor& scores, int64_t n_memory_cols, int64_t n_chunk);

}  // namespace ctxmem::compress
