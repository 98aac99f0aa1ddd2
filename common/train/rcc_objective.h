#pragma once
// RCC's training objectives (docs/rcc.md, spec rcc.md §2.1) over one sample of window + next
// tokens, with the frozen model as encoder and decoder and only the bridge trained:
//   kReconstruction  the decoder reads [slots ; window[s, s + span)] and is scored on the span's
//                    tokens after its first `hint` (the cue saying what to reproduce), as the
//                    released script's reconstruction mode (a span of the compressed window);
//   kContinuation    the decoder reads [slots ; next[0, c)] and is scored on next[1, c) (the
//                    first token has no logit once the slots are a memory: decoder_svc scores
//                    continuations the same way, compress/memory_scorer.h);
//   kInstruction     instruction reconstruction (§2.2) built from the book itself: the encoder
//                    reads window + "\n\nQ" where Q is a span of the window quoted as the
//                    question, the decoder reads [slots ; Q] and is scored on Q after the
//                    hint, then on the span following Q in the window (its "answer"). Token
//                    ids only: the question is the window's own span (no tokenizer needed).
// Loss: mean next-token cross-entropy over the scored tokens (nats).
// Thread-safety: free functions; the bridge's tensors get gradients (one call at a time).

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/learned/rcc_bridge.h"

namespace ctxmem::model {
class Transformer;
}

namespace ctxmem::train {

enum class RccTask { kReconstruction, kContinuation, kInstruction };
absl::StatusOr<RccTask> ParseRccTask(std::string_view name);  // reconstruction | continuation
std::string_view RccTaskName(RccTask task);                   // | instruction

struct RccLossOptions {
  int64_t window = 512;        // W: tokens the encoder reads
  int64_t rate = 16;           // r
  int64_t hint = 16;           // cue tokens not scored
  int64_t span = 128;          // reconstruction span (<= W)
  int64_t continuation = 128;  // next tokens (>= 2); the sample is W + continuation ids
};

struct RccSampleLoss {
  double loss = 0;  // mean NLL (nats) over n_scored
  int64_t n_scored = 0;
  int64_t n_correct = 0;  // scored tokens that are the argmax of their logit
  int64_t n_forward_tokens = 0;
};

// `sample` is window + continuation ids; `span_start` in [0, W - span] picks the span of
// kReconstruction / kInstruction. With backward_scale > 0 the gradient of backward_scale x
// loss accumulates into the bridge's tensors (which must require grad); 0 = no gradient.
// InvalidArgument for bad sizes; model errors as they are.
absl::StatusOr<RccSampleLoss> RccLoss(const model::Transformer& model,
                                      const learned::RccBridge& bridge,
                                      absl::Span<const int32_t> sample,
                                      const RccLossOptions& options, RccTask task,
                                      int64_t span_start, double backward_scale = 0);

}  // namespace ctxmem::train
