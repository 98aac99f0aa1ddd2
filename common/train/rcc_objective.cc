#include "common/train/rcc_objective.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/learned/rcc_model.h"
#include "common/model/torch_call.h"
#include "common/model/transformer.h"
#include "common/status.h"

namespace ctxmem::train {

absl::StatusOr<RccTask> ParseRccTask(std::string_view name) {
  if (name == "reconstruction") return RccTask::kReconstruction;
  if (name == "continuation") return RccTask::kContinuation;
  if (name == "instruction") return RccTask::kInstruction;
  return absl::InvalidArgumentError(absl::StrCat(
      "rcc task '", std::string(name), "': expected reconstruction | continuation | instruction"));
}

std::string_view RccTaskName(RccTask task) {
  switch (task) {
    case RccTask::kReconstruction:
      return "reconstruction";
    case RccTask::kContinuation:
      return "continuation";
    case RccTask::kInstruction:
      return "instruction";
  }
  return "?";
}

absl::StatusOr<RccSampleLoss> RccLoss(const model::Transformer& model,
                                      const learned::RccBridge& bridge,
                                      absl::Span<const int32_t> sample, const RccLossOptions& o,
                                      RccTask task, int64_t span_start, double backward_scale) {
  const int64_t w = o.window;
  if (w < o.rate || o.span < o.hint + 2 || o.span > w || o.continuation < 2 ||
      static_cast<int64_t>(sample.size()) != w + o.continuation) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rcc loss: sample of ", sample.size(), " ids for window=", w, " continuation=",
        o.continuation, " span=", o.span, " hint=", o.hint, " (need hint + 2 <= span <= window)"));
  }
  std::vector<int32_t> encoder_ids(sample.begin(), sample.begin() + w);
  std::vector<int32_t> tail;
  int64_t first_scored = o.hint;  // tail index of the first scored token
  if (task == RccTask::kContinuation) {
    tail.assign(sample.begin() + w, sample.end());
    first_scored = 1;
  } else if (task == RccTask::kReconstruction) {
    const int64_t s = std::clamp<int64_t>(span_start, 0, w - o.span);
    tail.assign(sample.begin() + s, sample.begin() + s + o.span);
  } else {
    // The question Q (first half of the span) is quoted at the end of the encoder's input; the
    // decoder recovers Q, then continues with what follows it in the window.
    const int64_t q = o.span / 2;
    if (w < q + o.span) return absl::InvalidArgumentError("rcc instruction: window < 1.5 span");
    const int64_t s = std::clamp<int64_t>(span_start, 0, w - q - o.span);
    encoder_ids.resize(w - q);
    encoder_ids.insert(encoder_ids.end(), sample.begin() + s, sample.begin() + s + q);
    tail.assign(sample.begin() + s, sample.begin() + s + o.span);
  }
  CTXMEM_ASSIGN_OR_RETURN(learned::RccSlots slots, learned::RccEncode(model, encoder_ids, o.rate));
  const int64_t n_slots = slots.size();
  const int64_t t = static_cast<int64_t>(tail.size());
  at::Tensor tail_ids = at::tensor(std::vector<int64_t>(tail.begin(), tail.end()),
                                   at::TensorOptions().dtype(at::kLong))
                            .unsqueeze(0);  // [1, T]
  std::optional<at::NoGradGuard> no_grad;
  if (backward_scale <= 0) no_grad.emplace();
  model::ForwardOptions options;
  options.logits = model::LogitsMode::kAll;
  CTXMEM_ASSIGN_OR_RETURN(model::ForwardResult out,
                          learned::RccDecode(model, bridge, slots, tail_ids, nullptr, options));
  RccSampleLoss result;
  result.n_forward_tokens = w + n_slots + t;
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("rcc loss", [&] {
    // Row n_slots + i - 1 predicts tail[i]; scored tail indices first_scored..t-1.
    const int64_t n = t - first_scored;
    at::Tensor logits = out.logits[0].narrow(0, n_slots + first_scored - 1, n);  // [n, V]
    at::Tensor labels = tail_ids[0].narrow(0, first_scored, n);
    at::Tensor loss = at::cross_entropy_loss(logits, labels);
    result.loss = loss.item<double>();
    result.n_scored = n;
    result.n_correct = logits.argmax(-1).eq(labels).sum().item<int64_t>();
    if (backward_scale > 0) (loss * backward_scale).backward();
  }));
  return result;
}

}  // namespace ctxmem::train
