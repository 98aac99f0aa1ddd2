#pragma once
// Fuser: a compressor that builds synthetic memory entries from the candidates instead of
// keeping a subset of them (spec §7: perceiver_fuser, llm_fuser; mean_fuser, the training-free
// baseline). It is one more entry of the PrunerRegistry (carry() = kFused tells MemoryState to
// call Fuse() instead of Select()), so configs, the services and the decoder need nothing new:
// a fused memory has the shape of a pruned one.
//
// What a fused entry is (docs/compression.md "Fused memories"):
//  - k (pre-RoPE) and v are computed, not copied: no entry is a token of the input (except when
//    the candidates already fit the target, which passes them through unchanged, as pruners).
//  - src is the stream index of the newest token the entry summarises (its anchor), so within
//    a head src stays strictly increasing and `original` positions stay in range; it is not a
//    token that the entry *is*. Memory::fused, the blob's "ctxmem.entries" = "fused" and the
//    probes say so.
//  - rank is 0 (a fused entry has no pruner score).
// Thread-safety: const methods only, as Pruner.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "common/compress/memory.h"
#include "common/compress/pruner.h"

namespace ctxmem::model {
class Transformer;
}

namespace ctxmem::compress {

// One chunk's fusion, every layer at once. Tensors borrow from the caller for the call only.
struct FuseInput {
  int64_t step = 0;    // 0-based chunk index
  int64_t target = 0;  // entries per kv head to produce, >= 1 and < every layer's candidates
  // Per layer, what is fused: [memory ; chunk] without sinks (FM, IM), the chunk (fixed
  // incremental), [hidden store ; chunk] (double compress). k, v [n_kv_heads, n, head_dim]
  // pre-RoPE, src [n_kv_heads, n]; n is the same for every layer.
  const std::vector<LayerMemory>* candidates = nullptr;
  // Per layer, what stays in front of the fused entries: the sinks, and the frozen memory under
  // fixed incremental. Fusers that run the LLM read [prefix ; candidates] as past (slots).
  const std::vector<LayerMemory>* prefix = nullptr;
  // The model the memory belongs to (MemoryState::set_model); fusers that run it check it.
  const model::Transformer* model = nullptr;
};

class Fuser : public Pruner {
 public:
  MemoryCarry carry() const final { return MemoryCarry::kFused; }

  // Per layer exactly `target` entries per kv head: k, v [n_kv_heads, target, head_dim] (model
  // dtype, the candidates' device), src [n_kv_heads, target] strictly increasing per head, rank
  // zeros [n_kv_heads, target]. InvalidArgument when the input's shapes disagree; Internal for
  // a torch failure.
  absl::StatusOr<std::vector<LayerMemory>> Fuse(const FuseInput& input) const;

 protected:
  // Called with validated input; may throw c10::Error (Fuse catches it).
  virtual std::vector<LayerMemory> FuseLayers(const FuseInput& input) const = 0;
  // Fusers do not rank: Select() on a fuser fails with an error saying so.
  at::Tensor Rank(const PruneInput& input) const final;
};

// The src of `target` fused entries made from `n` candidates of stream indices `src`
// [n_kv_heads, n] in `target` contiguous groups of sizes n / target or one more (the larger
// groups first): each group's last (newest) index. [n_kv_heads, target] int64.
at::Tensor GroupAnchors(const at::Tensor& src, int64_t target);
// The candidate index of every group's last entry, as GroupAnchors: [target] int64.
at::Tensor GroupEnds(int64_t n, int64_t target, c10::Device device);

}  // namespace ctxmem::compress
