#include "common/compress/h2o_pruner.h"

#include <ATen/ops/cat.h>

#include "common/compress/attention_stats.h"

namespace ctxmem::compress {

at::Tensor H2oPruner::Rank(const PruneInput& input) const {
  auto acc = ColumnSums(input.scores);  // [n_kv_heads, n_cols], no causal normalisation (§3.1)
  if (input.memory_hidden || input.n_memory == 0) return PrependHiddenMemoryRank(input, acc);
  // Memory entries add the score they carried (the running sum since they entered).
  auto memory = acc.narrow(1, 0, input.n_memory).add(input.memory_rank.to(at::kFloat));
  return at::cat({memory, acc.narrow(1, input.n_memory, input.n_chunk)}, 1);
}

}  // namespace ctxmem::compress
