#include "common/compress/memory.h"

#include <ATen/ops/arange.h>

#include "absl/strings/str_cat.h"
#include "common/model/torch_call.h"
#include "common/model/transformer.h"
#include "common/status.h"

namespace ctxmem::compress {

absl::StatusOr<model::KvCache> ToKvCache(const Memory& memory, const model::Transformer& model) {
  const model::ModelConfig& c = model.config();
  model::KvCache cache;
  const int64_t len = memory.len();
  cache.next_position = memory.position_mode == PositionMode::kSlots ? len : memory.n_tokens;
  if (len == 0) return cache;
  if (static_cast<int64_t>(memory.layers.size()) != c.n_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat("memory has ", memory.layers.size(), " layers, model has ", c.n_layers));
  }
  for (size_t i = 0; i < memory.layers.size(); ++i) {
    const LayerMemory& layer = memory.layers[i];
    const auto& k = layer.k;
    if (!k.defined() || k.dim() != 3 || k.size(0) != c.n_kv_heads || k.size(1) != len ||
        k.size(2) != c.head_dim || !layer.v.defined() || layer.v.sizes() != k.sizes() ||
        !layer.src.defined() || layer.src.dim() != 2 || layer.src.size(0) != c.n_kv_heads ||
        layer.src.size(1) != len) {
      return absl::InvalidArgumentError(absl::StrCat("memory layer ", i, " must hold k, v [",
                                                     c.n_kv_heads, ", ", len, ", ", c.head_dim,
                                                     "] and src [", c.n_kv_heads, ", ", len, "]"));
    }
  }
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("memory to kv cache", [&] {
    const auto device = model.device();
    at::Tensor slots;  // [1, len]
    if (memory.position_mode == PositionMode::kSlots) {
      slots = at::arange(len, at::TensorOptions().dtype(at::kLong).device(device)).unsqueeze(0);
    }
    for (const LayerMemory& layer : memory.layers) {
      auto k = layer.k.to(device);
      at::Tensor rotated;  // [1, n_kv_heads, len, head_dim]
      if (memory.position_mode == PositionMode::kSlots) {
        rotated = model.RotateKeys(k.unsqueeze(0), slots);
      } else {
        // Heads may keep different tokens: rotate each head at its own positions by treating
        // the heads as the batch ([n_kv_heads, 1, len, head_dim] with positions [n_kv, len]).
        rotated = model.RotateKeys(k.unsqueeze(1), layer.src.to(device)).squeeze(1).unsqueeze(0);
      }
      cache.k.push_back(rotated.contiguous());
      cache.v.push_back(layer.v.to(device).unsqueeze(0).contiguous());
    }
  }));
  return cache;
}

}  // namespace ctxmem::compress
