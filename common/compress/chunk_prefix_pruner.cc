#include "common/compress/chunk_prefix_pruner.h"

#include <ATen/core/Tensor.h>

namespace ctxmem::compress {

at::Tensor ChunkPrefixPruner::Rank(const PruneInput& input) const {
  return input.src.to(at::kFloat).neg();  // [n_kv_heads, n_candidates]
}

}  // namespace ctxmem::compress
