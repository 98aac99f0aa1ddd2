#pragma once
// The RCC model's two passes (docs/rcc.md, spec rcc.md §1.3-§1.4) on one frozen Transformer,
// which is both the encoder and the decoder (the decoder must be the served model, so that
// decoder_svc reads an RCC memory as an ordinary one; only the bridge is trained).
//
//   RccEncode: the encoder reads one window of n <= W tokens at positions 0..n-1 (no past) and
//     returns its hidden states l = 0..n_layers-1 (HF order: embedding, then after each layer
//     but the last) at the gather rows: the last token of each group of r (j*r + r - 1), plus
//     the window's last token when n is not a multiple of r (a short last window keeps every
//     token covered; no tiling, docs/rcc.md). S = ceil(n / r) slots.
//   RccDecode: the decoder runs [S placeholder ids ; tail tokens] at positions past_len.. with
//     the bridge rewriting the slot rows of its residual stream at every hook l (rcc_bridge.h).
//     The slots' K/V (pre-RoPE with ForwardOptions::return_pre_rope_keys) are the memory;
//     tail tokens (training, evaluation) see the slots as ordinary past positions.
// Thread-safety: free functions over const objects; run concurrently on one Transformer.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/learned/rcc_bridge.h"
#include "common/model/transformer.h"

namespace ctxmem::learned {

// Placeholder id of the slot positions (its embedding is always overwritten, spec §1.4).
inline constexpr int64_t kRccPlaceholderId = 0;

// Gather rows of a window of n tokens at rate r (see above). Empty for n < 1.
std::vector<int64_t> RccGatherRows(int64_t n, int64_t rate);

struct RccSlots {
  std::vector<at::Tensor> states;  // per l in [0, n_layers): [1, S, hidden] fp32, no grad
  std::vector<int64_t> rows;       // the S gather rows in the window

  int64_t size() const { return static_cast<int64_t>(rows.size()); }
};

// InvalidArgument for an empty window, a window longer than the model's max_positions or
// rate < 1; model errors as they are.
absl::StatusOr<RccSlots> RccEncode(const model::Transformer& model,
                                   absl::Span<const int32_t> window, int64_t rate);

// `tail` is [1, T] int64 (may be undefined: slots only); `past` may be null. options.logits,
// return_pre_rope_keys, kv_with_past are the caller's; residual_hook is set here.
// InvalidArgument when the bridge does not fit the model or slots are empty.
absl::StatusOr<model::ForwardResult> RccDecode(const model::Transformer& model,
                                               const RccBridge& bridge, const RccSlots& slots,
                                               const at::Tensor& tail, const model::KvCache* past,
                                               model::ForwardOptions options);

}  // namespace ctxmem::learned
