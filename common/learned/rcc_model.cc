#include "common/learned/rcc_model.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace ctxmem::learned {

std::vector<int64_t> RccGatherRows(int64_t n, int64_t rate) {
  std::vector<int64_t> rows;
  if (n < 1 || rate < 1) return rows;
  for (int64_t p = rate - 1; p < n; p += rate) rows.push_back(p);
  if (n % rate != 0) rows.push_back(n - 1);
  return rows;
}

absl::StatusOr<RccSlots> RccEncode(const model::Transformer& model,
                                   absl::Span<const int32_t> window, int64_t rate) {
  const int64_t n = static_cast<int64_t>(window.size());
  if (n < 1) return absl::InvalidArgumentError("rcc encoder: empty window");
  if (rate < 1) return absl::InvalidArgumentError(absl::StrCat("rcc rate=", rate, " must be >= 1"));
  const int64_t max_pos = model.config().max_positions;
  if (max_pos > 0 && n > max_pos) {
    return absl::InvalidArgumentError(
        absl::StrCat("rcc window of ", n, " tokens exceeds the model's max_positions=", max_pos));
  }
  RccSlots slots;
  slots.rows = RccGatherRows(n, rate);
  const int64_t n_layers = model.config().n_layers;
  at::NoGradGuard no_grad;  // the encoder is frozen (docs/rcc.md)
  const auto long_opts = at::TensorOptions().dtype(at::kLong);
  at::Tensor tokens =
      at::tensor(std::vector<int64_t>(window.begin(), window.end()), long_opts).unsqueeze(0);
  at::Tensor positions = at::arange(n, long_opts).unsqueeze(0);  // [1, n]
  at::Tensor rows = at::tensor(slots.rows, long_opts).to(model.device());
  slots.states.resize(n_layers);
  model::ForwardOptions options;
  options.logits = model::LogitsMode::kNone;
  options.residual_hook = [&](int64_t l, const at::Tensor& x) {
    if (l < n_layers) slots.states[l] = x.index_select(1, rows);  // [1, S, hidden]
    return x;
  };
  CTXMEM_RETURN_IF_ERROR(
      WithContext(model.Forward(tokens, positions, nullptr, options).status(), "rcc encoder"));
  return slots;
}

absl::StatusOr<model::ForwardResult> RccDecode(const model::Transformer& model,
                                               const RccBridge& bridge, const RccSlots& slots,
                                               const at::Tensor& tail, const model::KvCache* past,
                                               model::ForwardOptions options) {
  const model::ModelConfig& c = model.config();
  CTXMEM_RETURN_IF_ERROR(bridge.CheckFits(c.n_layers, c.hidden));
  const int64_t s = slots.size();
  if (s < 1 || static_cast<int64_t>(slots.states.size()) != c.n_layers) {
    return absl::InvalidArgumentError(absl::StrCat("rcc decoder: ", s, " slots with ",
                                                   slots.states.size(), " states for a ",
                                                   c.n_layers, "-layer model"));
  }
  const auto long_opts = at::TensorOptions().dtype(at::kLong);
  at::Tensor tokens = at::full({1, s}, kRccPlaceholderId, long_opts);  // [1, S]
  if (tail.defined() && tail.numel() > 0) {
    if (tail.dim() != 2 || tail.size(0) != 1) {
      return absl::InvalidArgumentError("rcc decoder: tail tokens must be [1, T]");
    }
    tokens = at::cat({tokens, tail.to(at::kLong).to(at::kCPU)}, 1);  // [1, S + T]
  }
  const int64_t start = past != nullptr ? past->next_position : 0;
  at::Tensor positions = at::arange(start, start + tokens.size(1), long_opts).unsqueeze(0);
  options.residual_hook = [&](int64_t l, const at::Tensor& x) -> at::Tensor {
    if (l >= c.n_layers) return x;  // no injection after the last layer (rcc_bridge.h)
    at::Tensor slot = bridge.SlotStream(l, slots.states[l], x.narrow(1, 0, s));  // [1, S, h]
    if (x.size(1) == s) return slot;
    return at::cat({slot, x.narrow(1, s, x.size(1) - s)}, 1);
  };
  return model.Forward(tokens, positions, past, options);
}

}  // namespace ctxmem::learned
