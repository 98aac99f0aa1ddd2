#pragma once
// PerceiverObjective: the training loss of the perceiver pruner over one window of tokens,
// computed by an FM rollout (spec §4.1, slots positions §6) of the frozen LLM in which the
// perceiver (PerceiverModule, rank routing) chooses the memory after every chunk.
//
// Per window of n_chunks chunks of C tokens, sinks S, memory M:
//   chunk t runs with past = memory_{t-1}; its candidates (per layer, per kv head) are
//   [memory_{t-1} without sinks ; chunk t] (chunk 0: its tokens after the sinks), and when
//   there are more than M the perceiver keeps the top M by its mean attention p (§12.5 ties).
// Objectives (named, docs/training.md):
//   kSeed     the seed's PrunerLoss (§3.9): LM cross-entropy of chunks 1.. after pruning, with the
//             straight-through factor (1 + p - stop_grad(p)) on the kept K and V (value 1 in
//             the forward, gradient to the scorer), plus aux_weight x MSE per layer of
//             S_n * (mean over the chunk's rows of the LLM's attention to the candidates - p),
//             S_n = number of candidates, averaged over layers and steps.
//   kNextMse  as kSeed, but the aux target is what the memory is for: the attention the *next*
//             chunk's queries pay to each candidate when they see all of them (past = [sinks ;
//             every candidate]), normalised to a distribution over the candidates.
//   kNextKl   that next-chunk target only, as KL(target || p); no LM term, so the LLM runs
//             without gradients (forward passes only: the cheap objective).
// The LLM's weights never get gradients; memory K/V are detached (§1) except through the
// straight-through factor.
// Thread-safety: free function; the module's parameters get gradients (one call at a time).

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace ctxmem::model {
class Transformer;
}

namespace ctxmem::train {

class PerceiverModule;

enum class PerceiverObjective { kSeed, kNextMse, kNextKl };
// "seed" | "next_mse" | "next_kl" (InvalidArgument lists them).
absl::StatusOr<PerceiverObjective> ParsePerceiverObjective(std::string_view name);
std::string_view PerceiverObjectiveName(PerceiverObjective objective);

struct PerceiverLossOptions {
  PerceiverObjective objective = PerceiverObjective::kSeed;
  int64_t chunk_size = 512;   // C
  int64_t memory_size = 128;  // M (non-sink entries)
  int64_t n_sinks = 4;        // S
  double aux_weight = 1.0;
};

struct WindowLoss {
  double total = 0;  // lm + aux_weight * aux, the value that was differentiated
  double lm = 0;     // mean LM NLL (nats) over the scored tokens of chunks 1.. (0 if none)
  double aux = 0;    // mean aux term over (step, layer)
  int64_t n_lm_tokens = 0;
  int64_t n_aux_terms = 0;
  int64_t n_forward_tokens = 0;  // tokens the LLM ran on (rollout + target passes)
};

// The loss of `tokens` (n_chunks * C ids, n_chunks >= 2, S < C). With backward_scale > 0 the
// gradient of backward_scale * total is accumulated into the module's parameters as the
// window goes (each chunk's graph is freed after its backward: the LM term of chunk t + 1
// depends only on the selection of step t, as memory K/V are detached); with 0 nothing is
// differentiated (validation). The normalisers are fixed: (n_chunks - 1) * (C - 1) LM tokens,
// (n_chunks - 1) * n_layers aux terms. InvalidArgument for bad sizes or ids; model errors as
// they are.
absl::StatusOr<WindowLoss> PerceiverWindowLoss(const model::Transformer& model,
                                               const PerceiverModule& perceiver,
                                               absl::Span<const int32_t> tokens,
                                               const PerceiverLossOptions& options,
                                               double backward_scale = 0);

}  // namespace ctxmem::train
