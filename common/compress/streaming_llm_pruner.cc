#include "common/compress/streaming_llm_pruner.h"

#include <ATen/core/Tensor.h>

namespace ctxmem::compress {

at::Tensor StreamingLlmPruner::Rank(const PruneInput& input) const {
  return input.src.to(at::kFloat);  // [n_kv_heads, n_candidates]
}

}  // namespace ctxmem::compress
