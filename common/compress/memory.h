#pragma once
// Memory: the bounded KV state a compression keeps (DESIGN.md "Data flow"): per layer the kept
// entries' pre-RoPE keys, values and stream indices. Keys are stored before RoPE, so a memory
// is position-free; ToKvCache() places it at slot or original positions (spec §6, §12.10).
// Thread-safety: plain value type (tensor handles); not thread-safe to mutate.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "common/compress/compression_config.h"
#include "common/model/kv_cache.h"

namespace ctxmem::model {
class Transformer;
}

namespace ctxmem::compress {

// One layer's entries. Per kv head the entries are in stream order, sinks first. Every head of
// a layer holds the same number of entries, but heads may keep different tokens (§2 "Gather").
// All tensors undefined = no entries.
struct LayerMemory {
  at::Tensor k;     // [n_kv_heads, len, head_dim], model dtype, pre-RoPE
  at::Tensor v;     // [n_kv_heads, len, head_dim], model dtype
  at::Tensor src;   // [n_kv_heads, len] int64, each entry's index in the token stream
  at::Tensor rank;  // [n_kv_heads, len] fp32, the pruner's rank when kept (0 for sinks)

  int64_t len() const { return src.defined() ? src.size(1) : 0; }
};

struct Memory {
  std::vector<LayerMemory> layers;  // n_layers entries (all of the same len), or empty
  int64_t n_sinks = 0;   // entries [0, n_sinks) of every head are stream tokens 0..n_sinks-1
  int64_t n_tokens = 0;  // tokens of the source consumed so far
  PositionMode position_mode = PositionMode::kSlots;
  // True when entries after the sinks may be synthetic (made by a fuser, spec §7, fuser.h):
  // their src is then the newest token each summarises, not a token they are.
  bool fused = false;

  int64_t len() const { return layers.empty() ? 0 : layers[0].len(); }  // entries per kv head
  bool empty() const { return len() == 0; }
};

// The memory as a model past (batch 1) with RoPE applied: kSlots puts entry i at position i
// and the next token at len(); kOriginal puts each entry at its src and the next token at
// n_tokens (decoding continues after the memory). An empty memory gives an empty cache with
// next_position as above. InvalidArgument when the layer count or shapes do not fit `model`;
// Internal for a torch failure.
absl::StatusOr<model::KvCache> ToKvCache(const Memory& memory, const model::Transformer& model);

}  // namespace ctxmem::compress
