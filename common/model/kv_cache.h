#pragma once
// Past key/value state of a transformer: per layer K and V with RoPE already applied to K.
// Thread-safety: not thread-safe; a cache belongs to one forward stream. Copying a KvCache
// copies tensor handles (shared storage), which is safe because forwards never write into a
// cache's tensors in place: Append() builds new tensors.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace ctxmem::model {

struct KvCache {
  std::vector<at::Tensor> k;  // per layer [batch, n_kv_heads, seq_len, head_dim], post-RoPE
  std::vector<at::Tensor> v;  // per layer [batch, n_kv_heads, seq_len, head_dim]
  // Position the next token takes (decoding continues after a memory, DESIGN.md data flow).
  int64_t next_position = 0;

  bool empty() const { return k.empty() || !k[0].defined() || k[0].size(2) == 0; }
  int64_t seq_len() const { return empty() ? 0 : k[0].size(2); }

  // Concatenates a forward's new entries (per layer [batch, n_kv_heads, n_new, head_dim]) and
  // advances next_position by n_new.
  void Append(const std::vector<at::Tensor>& new_k, const std::vector<at::Tensor>& new_v);
  // Takes a forward's [past ; new] entries (ForwardOptions::kv_with_past) as the cache and
  // advances next_position by the n_new entries beyond the old length: Append without the copy.
  void Extend(std::vector<at::Tensor> all_k, std::vector<at::Tensor> all_v);
};

}  // namespace ctxmem::model
