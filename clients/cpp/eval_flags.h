#pragma once
// Flags the compression subcommands (probe, eval-ppl, eval-passkey) share, and the parsing of
// their comma-separated lists ("1k,2k", "0,0.25,0.5", "FM,IMDC").
// Thread-safety: plain functions; call from the main thread.

#include <cstdint>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "common/compress/compression_config.h"

namespace ctxmem::cli {

// Compression settings common to every subcommand; lists are parsed by the subcommand.
struct CompressionFlags {
  std::string schedule = "linear";
  int64_t n_sink_tokens = 4;
  std::string position_mode = "slots";
  std::string score_mode = "exact";
  int64_t score_window = 32;
  uint64_t seed = 0;
  std::string perceiver_weights;  // perceiver: trained weights (safetensors)
  std::string perceiver_routing = "rank";
  // NAME=FILE: trained weights registered as method NAME (learned_method.h), repeatable.
  std::vector<std::string> learned;
};

// Registers --schedule, --sinks, --positions, --score-mode, --score-window, --seed on `cmd`.
void AddCompressionFlags(CLI::App* cmd, CompressionFlags* flags);

// A config with the flags applied (pruner, memory type, C and M left at their defaults), after
// registering the --learned methods. InvalidArgument for unknown names or bad learned files.
absl::StatusOr<compress::CompressionConfig> BaseConfig(const CompressionFlags& flags);

// "a,b,,c" -> {"a", "b", "c"} (blanks dropped, spaces trimmed).
std::vector<std::string> SplitList(const std::string& list);
// Token counts with an optional k suffix (x1024): "512,1k,2K" -> {512, 1024, 2048}.
// InvalidArgument naming the bad item.
absl::StatusOr<std::vector<int64_t>> ParseCounts(const std::string& list);
// Decimal numbers: "0,0.25,1" -> {0, 0.25, 1}. InvalidArgument naming the bad item.
absl::StatusOr<std::vector<double>> ParseNumbers(const std::string& list);

}  // namespace ctxmem::cli
