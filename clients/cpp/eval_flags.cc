#include "clients/cpp/eval_flags.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/learned/learned_method.h"
#include "common/status.h"

namespace ctxmem::cli {

void AddCompressionFlags(CLI::App* cmd, CompressionFlags* flags) {
  cmd->add_option("--schedule", flags->schedule,
                  "IM schedule: linear | square | sqrt | inverse_convex | inverse_concave")
      ->capture_default_str();
  cmd->add_option("--sinks", flags->n_sink_tokens, "Sink tokens kept outside the budget")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--positions", flags->position_mode, "slots | original")->capture_default_str();
  cmd->add_option("--score-mode", flags->score_mode, "exact | window")->capture_default_str();
  cmd->add_option("--score-window", flags->score_window, "Scoring queries in window mode")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--seed", flags->seed, "Seed of the random pruner")->capture_default_str();
  cmd->add_option("--perceiver-weights", flags->perceiver_weights,
                  "perceiver: trained weights (safetensors; spec §3.9)");
  cmd->add_option("--perceiver-routing", flags->perceiver_routing,
                  "perceiver: rank | positional | greedy | random")
      ->capture_default_str();
  cmd->add_option("--learned", flags->learned,
                  "NAME=FILE: trained weights usable as pruner NAME (repeatable)");
}

absl::StatusOr<compress::CompressionConfig> BaseConfig(const CompressionFlags& flags) {
  for (const std::string& spec : flags.learned) {
    CTXMEM_RETURN_IF_ERROR(learned::RegisterLearnedSpec(spec));
  }
  compress::CompressionConfig c;
  CTXMEM_ASSIGN_OR_RETURN(c.schedule, compress::ParseSchedule(flags.schedule));
  CTXMEM_ASSIGN_OR_RETURN(c.position_mode, compress::ParsePositionMode(flags.position_mode));
  CTXMEM_ASSIGN_OR_RETURN(c.score_mode, compress::ParseScoreMode(flags.score_mode));
  c.n_sink_tokens = flags.n_sink_tokens;
  c.score_window = flags.score_window;
  c.seed = flags.seed;
  c.perceiver_weights = flags.perceiver_weights;
  c.perceiver_routing = flags.perceiver_routing;
  return c;
}

std::vector<std::string> SplitList(const std::string& list) {
  std::vector<std::string> out;
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (!item.empty()) out.emplace_back(item);
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> ParseCounts(const std::string& list) {
  std::vector<int64_t> out;
  for (std::string item : SplitList(list)) {
    int64_t scale = 1;
    if (item.back() == 'k' || item.back() == 'K') {
      scale = 1024;
      item.pop_back();
    }
    int64_t value = 0;
    if (!absl::SimpleAtoi(item, &value) || value < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", item, "' in '", list, "' is not a count (e.g. 512 or 2k)"));
    }
    out.push_back(value * scale);
  }
  return out;
}

absl::StatusOr<std::vector<double>> ParseNumbers(const std::string& list) {
  std::vector<double> out;
  for (const std::string& item : SplitList(list)) {
    double value = 0;
    if (!absl::SimpleAtod(item, &value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", item, "' in '", list, "' is not a number"));
    }
    out.push_back(value);
  }
  return out;
}

}  // namespace ctxmem::cli
