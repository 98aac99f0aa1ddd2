#include "common/compress/local_window_pruner.h"

#include <ATen/ops/zeros.h>

namespace ctxmem::compress {

at::Tensor LocalWindowPruner::Rank(const PruneInput& input) const {
  return at::zeros({input.n_kv_heads, input.n_candidates()}, input.src.options().dtype(at::kFloat));
}

}  // namespace ctxmem::compress
