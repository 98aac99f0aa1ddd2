#include "common/learned/mean_fuser.h"

#include <ATen/ATen.h>

#include <algorithm>

namespace ctxmem::learned {

at::Tensor GroupOfCandidate(int64_t n, int64_t target, c10::Device device) {
  // Groups 0..extra-1 hold base + 1 entries, the rest base: candidate i is in group
  // i / (base + 1) while i < extra * (base + 1), else extra + (i - extra * (base + 1)) / base.
  const int64_t base = n / target, extra = n % target;
  at::Tensor i = at::arange(n, at::TensorOptions().dtype(at::kLong).device(device));
  const int64_t split = extra * (base + 1);
  at::Tensor big = at::floor_divide(i, base + 1);
  at::Tensor small =
      extra + at::floor_divide(at::clamp_min(i - split, 0), std::max<int64_t>(1, base));
  return at::where(i < split, big, small);  // [n]
}

std::vector<compress::LayerMemory> MeanFuser::FuseLayers(const compress::FuseInput& in) const {
  std::vector<compress::LayerMemory> out;
  for (const compress::LayerMemory& c : *in.candidates) {
    const int64_t h = c.k.size(0), n = c.k.size(1), d = c.k.size(2);
    at::Tensor group = GroupOfCandidate(n, in.target, c.k.device());  // [n]
    at::Tensor count = at::zeros({in.target}, c.k.options())
                           .index_add_(0, group, at::ones({n}, c.k.options()));  // [target]
    auto pool = [&](const at::Tensor& x) {  // [h, n, d] -> [h, target, d]
      return at::zeros({h, in.target, d}, x.options()).index_add_(1, group, x) /
             count.view({1, in.target, 1});
    };
    out.push_back({pool(c.k), pool(c.v), compress::GroupAnchors(c.src, in.target),
                   at::zeros({h, in.target}, c.k.options().dtype(at::kFloat))});
  }
  return out;
}

}  // namespace ctxmem::learned
