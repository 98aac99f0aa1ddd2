#pragma once
// CompressionConfig: everything that decides what a chunked compression keeps (spec §4, §5, §6,
// §12), plus the closed sets it chooses from (memory type, schedule, position and score mode).
// Thread-safety: plain value type.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ctxmem::compress {

// How the memory evolves from chunk to chunk (spec §4). IMDC is kIm + decremental chunks
// (§12.13), so it is not a separate value here.
enum class MemoryType {
  kFm,                // §4.1 fixed-size memory, re-selected every step
  kIm,                // §4.2 incremental memory following a schedule up to memory_size
  kFixedIncremental,  // §4.3 + §12.7 old memory frozen, each chunk adds its share of M
  kDoubleCompress,    // §4.4 hidden store of up to M, the LLM reads only its top cc entries
};

// A parsed memory-type name: "IMDC" is IM with decremental chunks.
struct MemoryTypeChoice {
  MemoryType type = MemoryType::kFm;
  bool decremental_chunk = false;
};

// Accepts the short names FM, IM, IMDC, FIXED_INCREMENTAL, DOUBLE_COMPRESS and the seed's long
// names (§4, §12.13), case-sensitive as the seed spells them. InvalidArgument lists them all.
absl::StatusOr<MemoryTypeChoice> ParseMemoryType(std::string_view name);
// Short name: "FM", "IM", "IMDC" (kIm + decremental), "FIXED_INCREMENTAL", "DOUBLE_COMPRESS".
std::string_view MemoryTypeName(MemoryType type, bool decremental_chunk = false);

// IM growth of the memory target over the steps (spec §5.1).
enum class Schedule { kLinear, kSquare, kSqrt, kInverseConvex, kInverseConcave };
absl::StatusOr<Schedule> ParseSchedule(std::string_view name);  // "linear", "square", ...
std::string_view ScheduleName(Schedule schedule);

// Which positions RoPE gives memory entries (spec §6, §12.10).
enum class PositionMode {
  kSlots,     // memory entries take 0..|mem|-1 in order, the chunk follows (seed behaviour)
  kOriginal,  // every entry keeps its position in the original token stream
};
absl::StatusOr<PositionMode> ParsePositionMode(std::string_view name);  // "slots" | "original"
std::string_view PositionModeName(PositionMode mode);

// Which queries of a chunk score the keys (spec §12.1).
enum class ScoreMode {
  kExact,   // all queries of the current chunk (default, faithful to the seeds)
  kWindow,  // only the last score_window queries (SnapKV's observation window)
};
absl::StatusOr<ScoreMode> ParseScoreMode(std::string_view name);  // "exact" | "window"
std::string_view ScoreModeName(ScoreMode mode);

struct CompressionConfig {
  std::string pruner = "streaming_llm";  // a PrunerRegistry name (§3), e.g. "tova", "snapkv"
  MemoryType memory_type = MemoryType::kFm;
  bool decremental_chunk = false;  // IMDC chunk sizes (§5.3); only with kIm
  int64_t chunk_size = 512;        // C, tokens per chunk (the base size for decremental chunks)
  int64_t memory_size = 256;       // M, non-sink entries per kv head the memory may hold; >= 0
  Schedule schedule = Schedule::kLinear;  // kIm only (§5.1)
  int64_t n_sink_tokens = 4;              // first tokens always kept, outside M (§12.12); >= 0
  PositionMode position_mode = PositionMode::kSlots;
  ScoreMode score_mode = ScoreMode::kExact;
  int64_t score_window = 32;         // w, queries per chunk that score keys in kWindow mode; >= 1
  int64_t conv_kernel_size = 5;      // conv/snapkv average-pool width (§3.3); odd, >= 1
  int64_t double_compress_size = 0;  // cc, entries the LLM reads under kDoubleCompress; [1, M]
  uint64_t seed = 0;                 // random pruner (§12.4); perceiver's random routing
  // perceiver only (§3.9): its trained weights (a safetensors file, perceiver_weights.h) and
  // routing ("rank" | "positional" | "greedy" | "random"). Without weights the perceiver refuses
  // to run. perceiver_fuser and llm_fuser (§7) read their trained file from perceiver_weights
  // too. The services do not take these from clients (a server-side path is not a request
  // field); the library and the `ctxmem` CLI do.
  std::string perceiver_weights;
  std::string perceiver_routing = "rank";
  // rcc only (docs/rcc.md): the bridge (learned/rcc_bridge_registry.h: "stride" or a name
  // registered with --learned), the encoder window W and the rate r (one slot per r tokens).
  // RCC reads none of the pruner fields above (chunk_size, memory_size, sinks, memory type).
  std::string rcc_bridge = "stride";
  int64_t rcc_window = 512;
  int64_t rcc_rate = 16;
  // Tokens the caller expects from a stream of unknown length; 0 = no expectation. Used to plan
  // IM schedules and decremental chunks when the source does not know its length (§12.8).
  int64_t expected_length = 0;

  // InvalidArgument naming the field, its value and the valid values for anything out of range
  // or inconsistent (unknown pruner, decremental_chunk without IM, even conv kernel, ...).
  absl::Status Validate() const;
};

}  // namespace ctxmem::compress
