#include "common/compress/top_k.h"

#include <ATen/ops/sort.h>

#include <algorithm>

namespace ctxmem::compress {

at::Tensor TopKIndices(const at::Tensor& values, int64_t k, TieBreak tie) {
  const int64_t n = values.size(-1);
  k = std::clamp<int64_t>(k, 0, n);
  // A stable descending sort keeps equal values in their input order; reversing the row first
  // makes the larger original index come first among equals.
  const bool flip = tie == TieBreak::kPreferLarger;
  auto keyed = flip ? values.flip(-1) : values;
  auto order = std::get<1>(at::sort(keyed, /*stable=*/true, /*dim=*/-1, /*descending=*/true));
  auto picked = order.narrow(-1, 0, k);              // [n_rows, k]
  if (flip) picked = picked.neg().add(n - 1);        // back to original indices
  return std::get<0>(at::sort(picked, /*dim=*/-1));  // ascending: memory keeps stream order
}

}  // namespace ctxmem::compress
