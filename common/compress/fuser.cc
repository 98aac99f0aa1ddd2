#include "common/compress/fuser.h"

#include <ATen/ATen.h>

#include "absl/strings/str_cat.h"
#include "common/model/torch_call.h"
#include "common/status.h"

namespace ctxmem::compress {

at::Tensor GroupEnds(int64_t n, int64_t target, c10::Device device) {
  // Group j has n / target + (j < n % target) entries; its last one is at cumsum - 1.
  at::Tensor j = at::arange(target, at::TensorOptions().dtype(at::kLong).device(device));
  const int64_t base = n / target, extra = n % target;
  return (j + 1) * base + at::clamp_max(j + 1, extra) - 1;  // [target]
}

at::Tensor GroupAnchors(const at::Tensor& src, int64_t target) {
  at::Tensor ends = GroupEnds(src.size(1), target, src.device());
  return src.index_select(1, ends);  // [n_kv_heads, target]
}

at::Tensor Fuser::Rank(const PruneInput&) const {
  TORCH_CHECK(false, "method ", std::string(name()),
              " is a fuser (spec §7): it builds entries with Fuse(), it does not select");
  return at::Tensor();
}

absl::StatusOr<std::vector<LayerMemory>> Fuser::Fuse(const FuseInput& in) const {
  if (in.candidates == nullptr || in.prefix == nullptr || in.candidates->empty() ||
      in.prefix->size() != in.candidates->size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("fuser ", std::string(name()), ": candidates and prefix per layer needed"));
  }
  const LayerMemory& c0 = in.candidates->front();
  if (!c0.k.defined() || c0.k.dim() != 3) {
    return absl::InvalidArgumentError(absl::StrCat(
        "fuser ", std::string(name()), ": layer 0 candidates must be [n_kv_heads, n, head_dim]"));
  }
  const int64_t n = c0.len();
  if (in.target < 1 || in.target >= n) {
    return absl::InvalidArgumentError(absl::StrCat("fuser ", std::string(name()),
                                                   ": target=", in.target, " must be in [1, n=", n,
                                                   ") (the caller passes fitting candidates)"));
  }
  for (size_t l = 0; l < in.candidates->size(); ++l) {
    const LayerMemory& c = (*in.candidates)[l];
    if (!c.k.defined() || !c.v.defined() || c.k.sizes() != c0.k.sizes() ||
        c.v.sizes() != c0.k.sizes() || c.src.dim() != 2 || c.src.size(0) != c0.k.size(0) ||
        c.src.size(1) != n) {
      return absl::InvalidArgumentError(absl::StrCat(
          "fuser ", std::string(name()), ": layer ", l, " candidates must be k, v [", c0.k.size(0),
          ", ", n, ", ", c0.k.size(2), "] and src [", c0.k.size(0), ", ", n, "] like layer 0"));
    }
  }
  std::vector<LayerMemory> out;
  CTXMEM_RETURN_IF_ERROR(
      model::TorchCall(absl::StrCat("fuser ", std::string(name())), [&] { out = FuseLayers(in); }));
  return out;
}

}  // namespace ctxmem::compress
