#pragma once
// MemoryState: the memory-type rules of spec §4 applied chunk after chunk, per layer: which
// entries are candidates, the target a pruner selects down to, and how the selection becomes
// the next memory (FM §4.1, IM/IMDC §4.2, FIXED_INCREMENTAL §4.3/§12.7, DOUBLE_COMPRESS §4.4).
// Pure tensor work on what the model returned; no model needed, so every rule is unit-tested.
// Thread-safety: not thread-safe (external sync); one state belongs to one compression.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/compress/chunk_planner.h"
#include "common/compress/compression_config.h"
#include "common/compress/memory.h"
#include "common/compress/pruner.h"

namespace ctxmem::model {
class Transformer;
}

namespace ctxmem::compress {

// One layer of a chunk's forward, batch dimension removed.
struct ChunkLayer {
  at::Tensor k;  // [n_kv_heads, q, head_dim], pre-RoPE
  at::Tensor v;  // [n_kv_heads, q, head_dim]
  // [n_kv_heads, n_rows, visible().len() + q] fp32: attention of the scoring queries over
  // [visible memory ; chunk], GQA groups summed. Required when the pruner needs scores and
  // `selection` is not given.
  at::Tensor scores;
  // What SelectLayer() chose for this layer at this step, when the caller selected while the
  // forward still had the layer's scores (Compress does, so that only one layer's scores exist
  // at a time). Used instead of `scores` when its indices are defined.
  Selection selection;
};

class MemoryState {
 public:
  // `config` must be valid; `plan` gives n for the IM schedule; `pruner` is borrowed and must
  // outlive the state. InvalidArgument for n_layers < 1.
  static absl::StatusOr<MemoryState> Create(const CompressionConfig& config, const ChunkPlan& plan,
                                            const Pruner& pruner, int64_t n_layers);
  // The model a fuser may run (llm_fuser, spec §7); borrowed, must outlive the state. Without
  // it such a fuser's Append() fails with InvalidArgument.
  void set_model(const model::Transformer* model) { model_ = model; }

  // Continues from a sealed memory (incremental append): `memory` becomes the visible memory
  // (its ranks as the pruner left them) and `hidden` DOUBLE_COMPRESS's hidden store (one entry
  // per layer there, empty for every other type). InvalidArgument naming the mismatch when the
  // layer count, position mode or hidden store do not fit the state; the state is unchanged then.
  absl::Status Restore(Memory memory, std::vector<LayerMemory> hidden);

  // What the next chunk's forward attends to (spec §4: [sink ; memory]).
  const Memory& visible() const { return visible_; }
  // Entries per kv head of DOUBLE_COMPRESS's hidden store (§4.4), sinks excluded; else 0.
  int64_t hidden_len() const;
  // Non-sink target the pruner selects down to at `step` (§4.1-§4.4): FM M; IM the §5.1
  // schedule (M on the last step); FIXED_INCREMENTAL the chunk's share of M; DOUBLE_COMPRESS
  // min(cc * (step + 1), M) for the hidden store.
  int64_t Target(int64_t step, bool is_last) const;

  // The pruner's choice for `layer` when chunk `step` of q tokens is appended next, from that
  // layer's `scores` [n_kv_heads, n_rows, visible().len() + q] (see ChunkLayer::scores). For
  // pruners that need scores and no keys; the result goes into ChunkLayer::selection.
  // InvalidArgument for a layer, q or scores that do not fit the state; errors from the pruner.
  absl::StatusOr<Selection> SelectLayer(int64_t layer, int64_t step, bool is_last, int64_t q,
                                        const at::Tensor& scores) const;

  // Adds chunk `step` (one ChunkLayer per layer, all with the same q >= 1) and compresses.
  // `is_last`: no tokens follow. InvalidArgument for shapes that do not match the state;
  // Internal for a torch failure. On error the state is unchanged.
  absl::Status Append(int64_t step, bool is_last, const std::vector<ChunkLayer>& chunk);

  // DOUBLE_COMPRESS's hidden store per layer (no sinks); empty for the other types.
  const std::vector<LayerMemory>& hidden() const { return hidden_; }

  // The final memory (what the LLM reads); leaves the state empty.
  Memory TakeMemory() &&;

 private:
  MemoryState() = default;
  // One layer's candidates for the next chunk (spec §4) and the pruner's input for them.
  struct Candidates {
    LayerMemory all;         // [sinks ; memory ; chunk]
    LayerMemory candidates;  // what the pruner chooses from (DOUBLE_COMPRESS: [hidden ; chunk])
    int64_t n_sinks = 0;
    int64_t begin = 0;  // first candidate's column in `all` (and in the chunk's scores)
    PruneInput input;   // everything but scores (and keys, when `fresh` has no k)
  };
  // `fresh`: the chunk as entries of this layer; its k and v may be undefined when only the
  // selection is wanted. May throw c10::Error.
  Candidates LayerCandidates(int64_t layer, int64_t step, bool is_last,
                             const LayerMemory& fresh) const;
  absl::Status AppendLayer(int64_t layer, int64_t step, bool is_last, const ChunkLayer& chunk,
                           LayerMemory* visible, LayerMemory* hidden) const;
  // Append() for a fuser (carry() = kFused): every layer's candidates fused at once (§7).
  absl::Status AppendFused(int64_t step, bool is_last, const std::vector<ChunkLayer>& chunk,
                           std::vector<LayerMemory>* visible,
                           std::vector<LayerMemory>* hidden) const;

  // Constant after construction.
  CompressionConfig config_;
  int64_t n_steps_ = 1;  // n of §5.1 from the plan
  const Pruner* pruner_ = nullptr;
  const model::Transformer* model_ = nullptr;  // for fusers that run the LLM; may be null

  Memory visible_;
  std::vector<LayerMemory> hidden_;  // DOUBLE_COMPRESS only: H per layer, no sinks
};

}  // namespace ctxmem::compress
