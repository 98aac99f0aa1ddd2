#include "common/compress/attention_stats.h"

#include <ATen/ops/arange.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/clamp_max.h>
#include <ATen/ops/full.h>

namespace ctxmem::compress {

at::Tensor FoldQueryHeads(const at::Tensor& attention, int64_t n_kv_heads) {
  const int64_t n_heads = attention.size(0);
  const int64_t group = n_heads / n_kv_heads;
  // Heads [g*group, (g+1)*group) form kv head g: a view [n_kv_heads, group, rows, cols].
  return attention.reshape({n_kv_heads, group, attention.size(1), attention.size(2)}).sum(1);
}

at::Tensor CausalQueryCounts(int64_t n_memory_cols, int64_t n_chunk, int64_t n_rows,
                             c10::Device device) {
  auto opts = at::TensorOptions().dtype(at::kFloat).device(device);
  auto memory = at::full({n_memory_cols}, static_cast<double>(n_rows), opts);
  auto seen_by = at::arange(n_chunk, 0, -1, opts);  // [n_chunk]: n_chunk - k queries at/after k
  auto chunk = at::clamp_max(seen_by, static_cast<double>(n_rows));
  return at::cat({memory, chunk});  // [n_memory_cols + n_chunk]
}

at::Tensor ColumnSums(const at::Tensor& scores) { return scores.to(at::kFloat).sum(1); }

at::Tensor CausalMeanScores(const at::Tensor& scores, int64_t n_memory_cols, int64_t n_chunk) {
  auto counts = CausalQueryCounts(n_memory_cols, n_chunk, scores.size(1), scores.device());
  return ColumnSums(scores).div(counts);  // [n_kv_heads, n_cols]
}

}  // namespace ctxmem::compress
