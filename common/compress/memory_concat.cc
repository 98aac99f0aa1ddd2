#include "common/compress/memory_concat.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "absl/strings/str_cat.h"
#include "common/model/torch_call.h"
#include "common/status.h"

namespace ctxmem::compress {
namespace {

// InvalidArgument unless `m` (index `i`) has the layout of `ref` (index `ref_i`).
absl::Status CheckCompatible(const Memory& ref, size_t ref_i, const Memory& m, size_t i) {
  if (m.position_mode != ref.position_mode) {
    return absl::InvalidArgumentError(absl::StrCat(
        "memory ", i, " uses position_mode=", AsAbsl(PositionModeName(m.position_mode)),
        " but memory ", ref_i, " uses ", AsAbsl(PositionModeName(ref.position_mode)),
        "; memories read together must share a position mode"));
  }
  if (m.empty() || ref.empty()) return absl::OkStatus();
  if (m.layers.size() != ref.layers.size()) {
    return absl::InvalidArgumentError(absl::StrCat("memory ", i, " has ", m.layers.size(),
                                                   " layers but memory ", ref_i, " has ",
                                                   ref.layers.size()));
  }
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const at::Tensor& a = ref.layers[l].k;
    const at::Tensor& b = m.layers[l].k;
    if (!b.defined() || b.dim() != 3 || b.size(0) != a.size(0) || b.size(2) != a.size(2) ||
        !m.layers[l].v.defined() || m.layers[l].v.sizes() != b.sizes()) {
      return absl::InvalidArgumentError(
          absl::StrCat("memory ", i, " layer ", l, " keys [", b.defined() ? b.size(0) : -1, ", *, ",
                       b.defined() && b.dim() == 3 ? b.size(2) : -1, "] do not match memory ",
                       ref_i, "'s [", a.size(0), ", *, ", a.size(2), "]"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Memory> ConcatMemories(absl::Span<const Memory* const> memories) {
  Memory out;
  if (memories.empty()) return out;
  out.position_mode = memories[0]->position_mode;
  out.n_sinks = memories[0]->n_sinks;
  // The first non-empty memory is the reference layout.
  const Memory* ref = nullptr;
  size_t ref_i = 0;
  int64_t n_nonempty = 0;
  for (size_t i = 0; i < memories.size(); ++i) {
    CTXMEM_RETURN_IF_ERROR(CheckCompatible(*memories[0], 0, *memories[i], i));
    if (!memories[i]->empty()) {
      if (ref == nullptr) {
        ref = memories[i];
        ref_i = i;
      }
      CTXMEM_RETURN_IF_ERROR(CheckCompatible(*ref, ref_i, *memories[i], i));
      ++n_nonempty;
    }
    out.n_tokens += memories[i]->n_tokens;
  }
  if (ref == nullptr) return out;
  if (n_nonempty == 1 && ref_i == 0) {
    // Only the first memory has entries: nothing moves, so its tensors are shared, not copied.
    out.layers = ref->layers;
    return out;
  }
  if (ref_i != 0) out.n_sinks = 0;  // the first memory is empty: it has no sinks to keep
  c10::InferenceMode inference_mode;
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("concatenate memories", [&] {
    const size_t n_layers = ref->layers.size();
    for (size_t l = 0; l < n_layers; ++l) {
      std::vector<at::Tensor> ks, vs, srcs, ranks;
      int64_t offset = 0;  // tokens of the sources before memory i
      for (const Memory* m : memories) {
        if (!m->empty()) {
          const LayerMemory& layer = m->layers[l];
          ks.push_back(layer.k.to(ref->layers[l].k.scalar_type()));  // [n_kv_heads, len, head_dim]
          vs.push_back(layer.v.to(ref->layers[l].v.scalar_type()));
          srcs.push_back(layer.src.to(at::kLong) + offset);  // [n_kv_heads, len]
          ranks.push_back(layer.rank.defined() ? layer.rank.to(at::kFloat)
                                               : at::zeros_like(layer.src, at::kFloat));
        }
        offset += m->n_tokens;
      }
      LayerMemory joined;
      joined.k = at::cat(ks, 1);  // [n_kv_heads, total, head_dim]
      joined.v = at::cat(vs, 1);
      joined.src = at::cat(srcs, 1);  // [n_kv_heads, total]
      joined.rank = at::cat(ranks, 1);
      out.layers.push_back(std::move(joined));
    }
  }));
  return out;
}

}  // namespace ctxmem::compress
