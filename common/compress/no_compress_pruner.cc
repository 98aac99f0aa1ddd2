#include "common/compress/no_compress_pruner.h"

#include <ATen/ops/zeros.h>

namespace ctxmem::compress {

at::Tensor NoCompressPruner::Rank(const PruneInput& input) const {
  return at::zeros({input.n_kv_heads, input.n_candidates()}, input.src.options().dtype(at::kFloat));
}

}  // namespace ctxmem::compress
