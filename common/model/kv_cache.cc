#include "common/model/kv_cache.h"

#include <ATen/ATen.h>

#include <utility>

namespace ctxmem::model {

void KvCache::Append(const std::vector<at::Tensor>& new_k, const std::vector<at::Tensor>& new_v) {
  if (new_k.empty()) return;
  const int64_t n_new = new_k[0].size(2);
  if (empty()) {
    k = new_k;
    v = new_v;
  } else {
    for (size_t i = 0; i < k.size(); ++i) {
      k[i] = at::cat({k[i], new_k[i]}, 2);
      v[i] = at::cat({v[i], new_v[i]}, 2);
    }
  }
  next_position += n_new;
}

void KvCache::Extend(std::vector<at::Tensor> all_k, std::vector<at::Tensor> all_v) {
  if (all_k.empty()) return;
  const int64_t n_new = all_k[0].size(2) - seq_len();
  k = std::move(all_k);
  v = std::move(all_v);
  next_position += n_new;
}

}  // namespace ctxmem::model
