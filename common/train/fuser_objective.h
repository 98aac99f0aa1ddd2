#pragma once
// FuserWindowLoss: the training loss of a fuser (spec §7) over one window of tokens, computed by
// an FM rollout (§4.1, slots positions §6) of the frozen LLM in which the fuser makes the memory
// after every chunk. Objective "lm" (the seed's for its fusers): the LM cross-entropy of chunks
// 1.. reading the fused memory; the gradient reaches the fuser through the fused K and V (and,
// for the perceiver fuser, its straight-through factor). Memory K/V are detached when they
// become candidates again (§1: one step of back-propagation), the LLM's weights never get
// gradients. Each chunk's LM term is back-propagated as soon as it is computed, so peak memory
// is one chunk's graph plus one fusion's.
// Thread-safety: free function; the fuser's parameters get gradients (one call at a time).

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/train/perceiver_objective.h"

namespace ctxmem::model {
class Transformer;
}

namespace ctxmem::train {

// A fuser under training: per layer the prefix (sinks) and the candidates (k pre-RoPE, v
// [n_kv_heads, n, head_dim], detached) -> per layer `target` fused {k, v} [n_kv_heads, target,
// head_dim] fp32, differentiable w.r.t. its parameters. May throw c10::Error.
using TrainFuseFn = std::function<absl::StatusOr<std::vector<std::pair<at::Tensor, at::Tensor>>>(
    const std::vector<at::Tensor>& prefix_k, const std::vector<at::Tensor>& prefix_v,
    const std::vector<at::Tensor>& cand_k, const std::vector<at::Tensor>& cand_v, int64_t target)>;

// The loss of `tokens` (n_chunks * C ids, n_chunks >= 2, S < C) with options' chunk_size,
// memory_size, n_sinks (objective and aux_weight are not used). With backward_scale > 0 the
// gradient of backward_scale * lm is accumulated into the fuser's parameters; with 0 nothing
// is differentiated (validation). WindowLoss::total = lm (mean NLL over (n_chunks - 1) * (C - 1)
// tokens). InvalidArgument for bad sizes; errors from the model and the fuser as they are.
absl::StatusOr<WindowLoss> FuserWindowLoss(const model::Transformer& model, const TrainFuseFn& fuse,
                                           absl::Span<const int32_t> tokens,
                                           const PerceiverLossOptions& options,
                                           double backward_scale = 0);

}  // namespace ctxmem::train
