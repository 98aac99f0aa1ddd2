#pragma once
// Memory probing (spec §9, §12.9): what a compression's memory holds after every step, per
// layer — how much of it survives a step (keep rate), how fast the first chunk is forgotten
// (forgetting curve), how much of every past chunk is still there (retention), where the memory
// comes from (distribution over source chunks) and how much attention the next chunk pays to
// it (usage). Tokens map to chunks by the real chunk boundaries, so IMDC's decremental chunks
// are probed correctly (§12.9). Results are data (ProbeData) with a JSON form; plots are drawn
// from the JSON by tools/plot_probe.py.
// Thread-safety: MemoryProbe is not thread-safe (one per compression); the free functions are.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/compress/compressor.h"
#include "common/compress/memory.h"
#include "nlohmann/json.hpp"

namespace ctxmem::eval {

// §9 MemoryUsage for one layer and step: attention the chunk's scoring queries pay to the
// non-sink memory entries they read. NaN = not measured (no memory yet, or usage off).
struct MemoryUsage {
  double valid = 0;  // share of memory keys whose mean attention exceeds the mean of all keys
  double score = 0;  // mean attention per memory key and query head, [0, 1]
};

// One layer's series, each indexed by step (0-based chunk index). Shares are in [0, 1]; a share
// of an empty set is 0. Sinks (§12.12) are left out of every share and count: they are always
// kept and would only add a constant.
struct LayerProbe {
  std::vector<int64_t> memory_len;  // entries per kv head after the step, sinks included
  // §9 MemoryRention, read as intended: share of the new non-sink memory that was already in
  // the memory before the step (per kv head, averaged). 0 at step 0 (nothing was in memory).
  std::vector<double> keep_rate;
  // §9 MemoryForgive: share of the non-sink memory that comes from chunk 0.
  std::vector<double> forgetting;
  // retention[t][j], j <= t: share of chunk j's non-sink tokens still in memory after step t
  // (per kv head, averaged). retention[t][t] is what the step kept of its own chunk.
  std::vector<std::vector<double>> retention;
  // distribution[t][j], j <= t: non-sink memory entries per kv head from chunk j after step t.
  std::vector<std::vector<double>> distribution;
  // §9 MemoryUsage of the memory chunk t read (the memory after step t - 1); NaN at step 0 and
  // when not measured.
  std::vector<double> usage_valid;
  std::vector<double> usage_score;
};

struct ProbeData {
  int64_t n_kv_heads = 0;
  int64_t n_sinks = 0;  // sink entries of the last memory observed
  // The memory was made by a fuser (spec §7, compress::Memory::fused): its entries are
  // synthetic and every series counts their anchors (src = the newest token an entry
  // summarises), not tokens the memory holds.
  bool fused_entries = false;
  // Chunk t covers stream tokens [chunk_begin[t], chunk_begin[t + 1]); n_steps + 1 entries.
  std::vector<int64_t> chunk_begin = {0};
  std::vector<LayerProbe> layers;  // n_layers
  LayerProbe mean;                 // every series averaged over the layers (memory_len: layer 0)

  int64_t n_steps() const { return static_cast<int64_t>(chunk_begin.size()) - 1; }
};

// Collects ProbeData from the memory after every step of one compression.
class MemoryProbe {
 public:
  // Records the memory after the next step (step = number of earlier calls). The step's chunk
  // is [previous memory.n_tokens, memory.n_tokens). `usage` has one entry per layer, or is
  // empty when usage was not measured. InvalidArgument when the memory does not continue the
  // previous one (n_tokens not increasing, layer or kv head count changed, src not a [n_kv_heads,
  // len] int64 tensor) or `usage` has the wrong length; the probe is then unchanged.
  absl::Status ObserveStep(const compress::Memory& memory,
                           absl::Span<const MemoryUsage> usage = {});

  const ProbeData& data() const { return data_; }
  // The data with ProbeData::mean filled in.
  ProbeData Finish() &&;

 private:
  ProbeData data_;
  // Non-sink stream indices of every kv head of every layer after the last step, ascending:
  // [layer][head][entry]. For the keep rate.
  std::vector<std::vector<std::vector<int64_t>>> previous_;
};

// §9 MemoryUsage of one layer: `scores` [n_kv_heads, n_rows, n_memory + q] fp32 is the causal
// attention of a chunk's scoring rows over [memory ; chunk] with each kv head's n_rep query
// heads summed (ForwardResult::scores, batch removed); the memory's first n_sinks columns are
// sinks and are left out. A key's mean attention is its column sum / n_rows; "valid" keys beat
// the mean over all keys and rows. {NaN, NaN} when there is no non-sink memory.
// InvalidArgument for shapes or counts that do not fit.
absl::StatusOr<MemoryUsage> MeasureMemoryUsage(const at::Tensor& scores, int64_t n_sinks,
                                               int64_t n_memory, int64_t n_rep);

struct ProbeOptions {
  // Also measure §9 MemoryUsage. Pruners without scores then get a score pass per chunk (all
  // rows); score pruners use the rows they score with (config.score_mode).
  bool attention_usage = true;
};

struct ProbeRun {
  compress::CompressResult result;
  ProbeData probe;
};

// Compress() with a MemoryProbe observing the memory after every step (through
// CompressHooks::on_memory and on_layer_scores; the caller's own hooks of those kinds still
// run, after the probe's): the same chunks and memory as Compress(model, source, config, hooks)
// (tested). Errors as Compress().
absl::StatusOr<ProbeRun> CompressAndProbe(const model::Transformer& model,
                                          compress::TokenSource& source,
                                          const compress::CompressionConfig& config,
                                          const ProbeOptions& options = {},
                                          const compress::CompressHooks& hooks = {});

// JSON form: {"n_steps", "n_layers", "n_kv_heads", "n_sinks", "chunk_begin", "mean": series,
// "layers": [series...]} where a series has the LayerProbe field names; NaN becomes null.
nlohmann::json ProbeDataToJson(const ProbeData& data);

}  // namespace ctxmem::eval
