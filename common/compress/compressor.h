#pragma once
// Compress(): the chunked compression driver (DESIGN.md "Data flow", spec §1). Reads a token
// source chunk by chunk (ChunkPlan), runs the model on each chunk with the current memory as
// past, and applies the memory type and pruner (MemoryState) after every chunk. Peak memory
// depends on chunk size and memory budget, never on the context length (no_compress aside):
// score-based pruners select inside the forward, so one layer's scores exist at a time.
// Thread-safety: Compress() may run concurrently on one Transformer with different sources.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/compress/append_state.h"
#include "common/compress/chunk_planner.h"
#include "common/compress/compression_config.h"
#include "common/compress/memory.h"
#include "common/compress/token_source.h"

namespace ctxmem::model {
class Transformer;
}

namespace ctxmem::compress {

struct CompressProgress {
  int64_t step = 0;             // chunks done, 1-based after the first
  int64_t n_tokens_done = 0;    // tokens consumed so far
  int64_t n_tokens_total = -1;  // source length, -1 if unknown
  int64_t memory_len = 0;       // entries per kv head the memory holds now (sinks included)
};

// One chunk's logits, for evaluation (perplexity over every chunk, spec §10.1). Borrowed for
// the duration of the callback.
struct ChunkLogits {
  int64_t step = 0;
  int64_t first_token = 0;             // stream index of the chunk's first token
  const at::Tensor* tokens = nullptr;  // [q] int64
  const at::Tensor* logits = nullptr;  // [q, n_vocab] fp32; row i predicts token first_token+i+1
};

// One layer's attention during a chunk's forward (probing, spec §9 usage). Borrowed for the
// duration of the callback.
struct LayerScores {
  int64_t step = 0;
  int64_t layer = 0;
  const Memory* memory = nullptr;      // what the chunk read as past
  const at::Tensor* scores = nullptr;  // [n_kv_heads, n_rows, memory->len() + q] fp32
};

struct CompressHooks {
  std::function<void(const CompressProgress&)> on_progress;  // after every chunk
  // When set, every chunk's forward also computes logits and hands them here; an error status
  // stops the compression and is returned.
  std::function<absl::Status(const ChunkLogits&)> on_chunk_logits;
  // When set, asked before every chunk (so a stop takes effect within one chunk); true stops
  // the compression with Cancelled naming how many chunks were done. Called on the compressing
  // thread; must be cheap and thread-safe with whatever sets the condition.
  std::function<bool()> should_stop;
  // When set, every layer's attention scores come here during the forward (the pruner's scoring
  // rows, §12.1; all rows when the pruner needs none); an error stops the compression.
  std::function<absl::Status(const LayerScores&)> on_layer_scores;
  // When set, called with the memory after every chunk's update; an error stops the compression.
  std::function<absl::Status(int64_t step, const Memory& memory)> on_memory;
  // When set, every chunk's forward reads past_transform(memory) as its past instead of the
  // memory itself (e.g. RoundTripMemory: what a reader of a quantized blob would see, for
  // evaluation); the compression state keeps the memory as it is. Must keep every shape.
  std::function<absl::StatusOr<Memory>(const Memory&)> past_transform;
};

struct CompressResult {
  Memory memory;         // what the model reads as past after the last chunk
  ChunkPlan plan;        // how the chunks were planned (basis: total/expected/unknown length)
  int64_t n_chunks = 0;  // chunks this call ran (a continuation's base not counted)
  // What continuing this memory needs besides `memory` (steps since the first token, the plan's
  // length, the hidden store): sealed into the blob for incremental append.
  AppendState state;
};

// Compresses everything `source` yields. InvalidArgument for an invalid config (naming the
// field), an empty source, or a plan that cannot work (§12.8); Cancelled when
// hooks.should_stop says so; errors from the source, the model or a hook are returned as they
// are (with context).
absl::StatusOr<CompressResult> Compress(const model::Transformer& model, TokenSource& source,
                                        const CompressionConfig& config,
                                        const CompressHooks& hooks = {});

// Continues `base` (a sealed memory and its AppendState, e.g. from DecodeResumableMemory) with
// the tokens of `source`: the chunks continue the base's step count and its chunk plan (the plan
// of the base's planned_length; steps past it follow ChunkPlan's rules for streams longer than
// planned), so for every memory type compress(A) then append(B) equals compress(A + B) planned
// for |A| tokens, when A ends on a chunk boundary (docs/compression.md "Incremental append").
// Costs O(tokens of source); the base is not re-read. InvalidArgument as Compress, and when the
// base does not fit the config or the model (layers, position mode, hidden store).
absl::StatusOr<CompressResult> CompressAppend(const model::Transformer& model, TokenSource& source,
                                              const CompressionConfig& config,
                                              const ResumableMemory& base,
                                              const CompressHooks& hooks = {});

}  // namespace ctxmem::compress
