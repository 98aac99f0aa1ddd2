#include "common/compress/compression_config.h"

#include <array>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/compress/pruner_registry.h"
#include "common/learned/perceiver_pruner.h"
#include "common/learned/rcc_bridge_registry.h"
#include "common/status.h"

namespace ctxmem::compress {
namespace {

struct MemoryTypeEntry {
  std::string_view name;
  MemoryTypeChoice choice;
};

// Short names first (they are what MemoryTypeName returns), then the seed's names (§4, §12.13).
constexpr std::array<MemoryTypeEntry, 9> kMemoryTypeNames = {{
    {"FM", {MemoryType::kFm, false}},
    {"IM", {MemoryType::kIm, false}},
    {"IMDC", {MemoryType::kIm, true}},
    {"FIXED_INCREMENTAL", {MemoryType::kFixedIncremental, false}},
    {"DOUBLE_COMPRESS", {MemoryType::kDoubleCompress, false}},
    {"Chunk_Streaming", {MemoryType::kFm, false}},
    {"Incremental_Chunk_Streaming_Dynamic_History", {MemoryType::kIm, false}},
    {"Incremental_Chunk_Streaming_Fixed_History", {MemoryType::kFixedIncremental, false}},
    {"dynamic_incremental_double_compress", {MemoryType::kDoubleCompress, false}},
}};

constexpr std::array<std::pair<std::string_view, Schedule>, 5> kScheduleNames = {{
    {"linear", Schedule::kLinear},
    {"square", Schedule::kSquare},
    {"sqrt", Schedule::kSqrt},
    {"inverse_convex", Schedule::kInverseConvex},
    {"inverse_concave", Schedule::kInverseConcave},
}};

constexpr std::array<std::pair<std::string_view, PositionMode>, 2> kPositionModeNames = {{
    {"slots", PositionMode::kSlots},
    {"original", PositionMode::kOriginal},
}};

constexpr std::array<std::pair<std::string_view, ScoreMode>, 2> kScoreModeNames = {{
    {"exact", ScoreMode::kExact},
    {"window", ScoreMode::kWindow},
}};

template <typename Table>
std::string JoinNames(const Table& table) {
  std::string out;
  for (const auto& entry : table) {
    if (!out.empty()) out += ", ";
    out += std::string(entry.first);
  }
  return out;
}

template <typename T, size_t N>
absl::StatusOr<T> ParseFromTable(const std::array<std::pair<std::string_view, T>, N>& table,
                                 std::string_view what, std::string_view name) {
  for (const auto& [entry_name, value] : table) {
    if (entry_name == name) return value;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown ", std::string(what), " '", std::string(name), "'; valid: ", JoinNames(table)));
}

template <typename T, size_t N>
std::string_view NameFromTable(const std::array<std::pair<std::string_view, T>, N>& table,
                               T value) {
  for (const auto& [entry_name, entry_value] : table) {
    if (entry_value == value) return entry_name;
  }
  return "?";
}

}  // namespace

absl::StatusOr<MemoryTypeChoice> ParseMemoryType(std::string_view name) {
  for (const MemoryTypeEntry& entry : kMemoryTypeNames) {
    if (entry.name == name) return entry.choice;
  }
  std::string valid;
  for (const MemoryTypeEntry& entry : kMemoryTypeNames) {
    if (!valid.empty()) valid += ", ";
    valid += std::string(entry.name);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown memory_type '", std::string(name), "'; valid: ", valid));
}

std::string_view MemoryTypeName(MemoryType type, bool decremental_chunk) {
  for (const MemoryTypeEntry& entry : kMemoryTypeNames) {
    if (entry.choice.type == type && entry.choice.decremental_chunk == decremental_chunk) {
      return entry.name;
    }
  }
  return "?";
}

absl::StatusOr<Schedule> ParseSchedule(std::string_view name) {
  return ParseFromTable(kScheduleNames, "schedule", name);
}
std::string_view ScheduleName(Schedule schedule) { return NameFromTable(kScheduleNames, schedule); }

absl::StatusOr<PositionMode> ParsePositionMode(std::string_view name) {
  return ParseFromTable(kPositionModeNames, "position_mode", name);
}
std::string_view PositionModeName(PositionMode mode) {
  return NameFromTable(kPositionModeNames, mode);
}

absl::StatusOr<ScoreMode> ParseScoreMode(std::string_view name) {
  return ParseFromTable(kScoreModeNames, "score_mode", name);
}
std::string_view ScoreModeName(ScoreMode mode) { return NameFromTable(kScoreModeNames, mode); }

absl::Status CompressionConfig::Validate() const {
  auto bad = [](auto&&... parts) { return absl::InvalidArgumentError(absl::StrCat(parts...)); };
  CTXMEM_RETURN_IF_ERROR(PrunerRegistry::Global().Check(pruner));
  if (chunk_size < 1) return bad("chunk_size=", chunk_size, " must be >= 1");
  if (memory_size < 0) return bad("memory_size=", memory_size, " must be >= 0");
  if (n_sink_tokens < 0) return bad("n_sink_tokens=", n_sink_tokens, " must be >= 0");
  if (decremental_chunk && memory_type != MemoryType::kIm) {
    return bad("decremental_chunk=true needs memory_type=IM (IMDC), got memory_type=",
               std::string(MemoryTypeName(memory_type)));
  }
  if (score_mode == ScoreMode::kWindow && score_window < 1) {
    return bad("score_window=", score_window, " must be >= 1 with score_mode=window");
  }
  if (conv_kernel_size < 1 || conv_kernel_size % 2 == 0) {
    return bad("conv_kernel_size=", conv_kernel_size, " must be odd and >= 1 (spec §3.3)");
  }
  if (memory_type == MemoryType::kDoubleCompress &&
      (double_compress_size < 1 || double_compress_size > memory_size)) {
    return bad("double_compress_size=", double_compress_size,
               " must be in [1, memory_size=", memory_size, "] with memory_type=DOUBLE_COMPRESS");
  }
  if (!perceiver_weights.empty() && pruner != "perceiver" && pruner != "perceiver_fuser" &&
      pruner != "llm_fuser") {
    return bad(
        "perceiver_weights is only read by pruner=perceiver, perceiver_fuser and "
        "llm_fuser, got pruner=",
        pruner);
  }
  CTXMEM_RETURN_IF_ERROR(learned::ParsePerceiverRouting(perceiver_routing).status());
  if (pruner == "rcc") {
    if (rcc_rate < 1 || rcc_window < rcc_rate || rcc_window % rcc_rate != 0) {
      return bad("rcc_window=", rcc_window, " rcc_rate=", rcc_rate,
                 ": need rcc_rate >= 1 and rcc_window a multiple of rcc_rate");
    }
    CTXMEM_RETURN_IF_ERROR(learned::CheckRccBridge(rcc_bridge));
  }
  if (expected_length < 0) {
    return bad("expected_length=", expected_length, " must be >= 0 (0 = unknown)");
  }
  return absl::OkStatus();
}

}  // namespace ctxmem::compress
