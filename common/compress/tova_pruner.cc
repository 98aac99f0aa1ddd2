#include "common/compress/tova_pruner.h"

#include <ATen/core/Tensor.h>

#include "common/compress/attention_stats.h"

namespace ctxmem::compress {

at::Tensor TovaPruner::Rank(const PruneInput& input) const {
  auto mean = CausalMeanScores(input.scores, ScoredMemoryColumns(input), input.n_chunk);
  return PrependHiddenMemoryRank(input, mean);  // [n_kv_heads, n_candidates]
}

}  // namespace ctxmem::compress
