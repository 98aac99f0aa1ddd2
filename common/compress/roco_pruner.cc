#include "common/compress/roco_pruner.h"

#include <ATen/core/Tensor.h>

#include "common/compress/attention_stats.h"
#include "common/compress/top_k.h"

namespace ctxmem::compress {

at::Tensor RocoPruner::Rank(const PruneInput& input) const {
  const int64_t n_mem_cols = ScoredMemoryColumns(input);
  auto counts = CausalQueryCounts(n_mem_cols, input.n_chunk, input.scores.size(1),
                                  input.scores.device());  // [n_cols]
  auto a = input.scores.to(at::kFloat);                    // [n_kv_heads, n_rows, n_cols]
  auto mean = a.sum(1).div(counts);                        // [n_kv_heads, n_cols]
  auto second_moment = a.square().sum(1).div(counts);      // E[a^2] per key (§12.3)
  auto stddev = second_moment.sub(mean.square()).clamp_min(0.0).sqrt();
  auto low_std = TopKIndices(stddev.neg(), input.target / 2, TieBreak::kPreferSmaller);
  mean = mean.scatter(1, low_std, 0.0);
  return PrependHiddenMemoryRank(input, mean);  // [n_kv_heads, n_candidates]
}

}  // namespace ctxmem::compress
