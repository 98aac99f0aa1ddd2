#pragma once
// Pruner: ranks the candidate KV entries [memory ; chunk] of one layer per kv head and keeps
// the best `target` of them (spec §2, §3). Concrete pruners only rank; Select() validates the
// input, applies the deterministic top-k of §12.5 and catches torch errors.
// Thread-safety: const methods only; pruners keep no state between calls (H2O's running score
// travels with the memory as PruneInput::memory_rank), so one pruner may serve many layers,
// steps and compressions at once.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"

namespace ctxmem::compress {

// One layer's candidates. Candidate c < n_memory is memory entry c; candidate n_memory + k is
// the chunk's k-th non-sink token. Sinks are never candidates (§2 "sink split", §12.12). Within
// a kv head, candidates are in stream order. Tensors borrow from the caller for the call only.
struct PruneInput {
  int64_t layer = 0;       // 0-based, for pruners that vary per layer (random)
  int64_t step = 0;        // 0-based chunk index
  int64_t n_kv_heads = 0;  // >= 1
  int64_t n_memory = 0;    // >= 0
  int64_t n_chunk = 0;     // >= 0
  int64_t target = 0;      // entries to keep per kv head, >= 0 (clamped to the candidate count)
  // Attention of the chunk's scoring queries (§12.1), GQA groups summed (§12.2), sink columns
  // removed: [n_kv_heads, n_rows, n_memory + n_chunk] fp32, or [n_kv_heads, n_rows, n_chunk]
  // when memory_hidden. Needed only when needs_scores(); n_rows >= 1.
  at::Tensor scores;
  // True when the memory candidates were not visible to the chunk's queries (DOUBLE_COMPRESS's
  // hidden store, §4.4): their rank is memory_rank, not fresh attention.
  bool memory_hidden = false;
  // Rank each memory entry got when it was selected: [n_kv_heads, n_memory] fp32. Required
  // when n_memory > 0. H2O adds its new attention to it (§3.1).
  at::Tensor memory_rank;
  // Stream index of every candidate: [n_kv_heads, n_memory + n_chunk] int64.
  at::Tensor src;
  // Pre-RoPE keys of the candidates, for pruners that look at keys (perceiver, §3.9):
  // [n_kv_heads, n_memory + n_chunk, head_dim]; may be undefined for the others.
  at::Tensor keys;

  int64_t n_candidates() const { return n_memory + n_chunk; }
};

// What a pruner keeps of one layer.
struct Selection {
  at::Tensor indices;  // [n_kv_heads, k] int64 candidate indices, ascending per head
  at::Tensor rank;     // [n_kv_heads, k] fp32, the rank each kept entry had (memory_rank later)
};

// How a pruner's memory carries over to the next chunk.
enum class MemoryCarry {
  kSelected,    // the memory type's rule with Select() (every real pruner)
  kEverything,  // no_compress: every entry stays, the budget does not apply (§3.8)
  kNothing,     // local_window: no memory, not even sinks (§3.8, §12.11)
  kFused,       // fusers (fuser.h, spec §7): the memory type's rule with synthetic entries
};

class Pruner {
 public:
  virtual ~Pruner() = default;

  virtual std::string_view name() const = 0;
  // True when Select() needs PruneInput::scores (the driver then asks the model for them).
  virtual bool needs_scores() const { return false; }
  virtual MemoryCarry carry() const { return MemoryCarry::kSelected; }
  // True when Rank() reads PruneInput::memory_rank (h2o's running score): a continued memory
  // must then carry its ranks (incremental append stores them in the blob).
  virtual bool reads_memory_rank() const { return false; }

  // Keeps min(target, n_candidates) entries per kv head: the highest ranks, ties to the more
  // recent entry (§12.5). InvalidArgument naming the field when the input's shapes do not
  // match its counts; Internal for a torch failure. Tensors come back on the input's device.
  absl::StatusOr<Selection> Select(const PruneInput& input) const;

 protected:
  // Rank of every candidate, higher = keep: [n_kv_heads, n_candidates] fp32. Called only with
  // validated input and n_candidates >= 1; may throw c10::Error (Select catches it).
  virtual at::Tensor Rank(const PruneInput& input) const = 0;
};

// For pruners that score only the columns the chunk's queries saw: returns `scored`
// [n_kv_heads, n_cols] unchanged, or with memory_rank put in front when memory_hidden, giving
// [n_kv_heads, n_candidates] either way. May throw c10::Error.
at::Tensor PrependHiddenMemoryRank(const PruneInput& input, const at::Tensor& scored);

// Columns of PruneInput::scores that belong to the memory: n_memory, or 0 when memory_hidden.
inline int64_t ScoredMemoryColumns(const PruneInput& input) {
  return input.memory_hidden ? 0 : input.n_memory;
}

}  // namespace ctxmem::compress
