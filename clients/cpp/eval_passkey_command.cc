#include "clients/cpp/eval_passkey_command.h"

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "clients/cpp/plot_runner.h"
#include "common/eval/passkey_task.h"
#include "nlohmann/json.hpp"

namespace ctxmem::cli {

CLI::App* AddEvalPasskeyCommand(CLI::App* app, EvalPasskeyArgs* args) {
  CLI::App* cmd = app->add_subcommand(
      "eval-passkey", "Passkey retrieval through compression (length x depth heatmap)");
  AddModelFlags(cmd, &args->model);
  AddCompressionFlags(cmd, &args->compression);
  cmd->add_option("--lengths", args->lengths, "Prompt lengths in tokens, e.g. 1k,2k,4k")
      ->capture_default_str();
  cmd->add_option("--depths", args->depths, "Key depths in [0, 1], comma-separated")
      ->capture_default_str();
  cmd->add_option("--pruner", args->pruners, "Pruner name(s), comma-separated")
      ->capture_default_str();
  cmd->add_option("--memory-type", args->memory_type, "FM | IM | IMDC | ...")
      ->capture_default_str();
  cmd->add_option("--chunk", args->chunk_size, "Chunk size C (tokens)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--memory", args->memory_size, "Memory size M (entries per kv head)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--trials", args->n_trials, "Keys per (length, depth)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-new-tokens", args->max_new_tokens, "Tokens generated per answer")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--key-seed", args->key_seed, "Seed of the random keys")->capture_default_str();
  cmd->add_option("--out", args->out_dir, "Output folder")->required();
  cmd->add_option("--name", args->name, "Output file stem: DIR/NAME.{json,md,png}")
      ->capture_default_str();
  cmd->add_option("--python", args->python, "Python with matplotlib for the heatmap")
      ->envname("CTXMEM_PYTHON")
      ->capture_default_str();
  cmd->add_flag("--no-plot", args->no_plot, "Write JSON and markdown only");
  return cmd;
}

int RunEvalPasskey(const EvalPasskeyArgs& args) {
  const std::string kCommand = "eval-passkey";
  absl::StatusOr<compress::CompressionConfig> base = BaseConfig(args.compression);
  if (!base.ok()) return ReportError(kCommand, base.status());
  absl::StatusOr<compress::MemoryTypeChoice> type = compress::ParseMemoryType(args.memory_type);
  if (!type.ok()) return ReportError(kCommand, type.status());
  absl::StatusOr<std::vector<int64_t>> lengths = ParseCounts(args.lengths);
  if (!lengths.ok()) return ReportError(kCommand, lengths.status());
  absl::StatusOr<std::vector<double>> depths = ParseNumbers(args.depths);
  if (!depths.ok()) return ReportError(kCommand, depths.status());
  std::vector<eval::PasskeyOptions> runs;
  for (const std::string& pruner : SplitList(args.pruners)) {
    eval::PasskeyOptions o;
    o.lengths = *lengths;
    o.depths = *depths;
    o.n_trials = args.n_trials;
    o.seed = args.key_seed;
    o.max_new_tokens = args.max_new_tokens;
    o.config = *base;
    o.config.pruner = pruner;
    // --perceiver-weights is for the perceiver runs only (the other pruners refuse it).
    if (pruner != "perceiver") o.config.perceiver_weights.clear();
    o.config.memory_type = type->type;
    o.config.decremental_chunk = type->decremental_chunk;
    o.config.chunk_size = args.chunk_size;
    o.config.memory_size = args.memory_size;
    if (absl::Status s = o.Validate(); !s.ok()) return ReportError(kCommand, s);
    runs.push_back(o);
  }
  if (runs.empty()) {
    return ReportError(kCommand, absl::InvalidArgumentError("--pruner names no pruner"));
  }
  if (absl::Status s = MakeOutputDir(args.out_dir); !s.ok()) return ReportError(kCommand, s);
  absl::StatusOr<std::unique_ptr<model::Model>> model = LoadModel(args.model);
  if (!model.ok()) return ReportError(kCommand, model.status());

  nlohmann::json json;
  json["model"] = (*model)->path();
  json["runs"] = nlohmann::json::array();
  std::string md;
  for (const eval::PasskeyOptions& o : runs) {
    auto progress = [&](const eval::PasskeyProgress& p) {
      const eval::PasskeyTrial& t = *p.last;
      std::fprintf(stderr, "[%lld/%lld] %s len %lld depth %.2f key %s -> '%s' %s (%.1f s)\n",
                   static_cast<long long>(p.done), static_cast<long long>(p.total),
                   o.config.pruner.c_str(), static_cast<long long>(t.length), t.depth,
                   t.passkey.c_str(), t.answer.c_str(), t.correct ? "ok" : "wrong",
                   t.compress_seconds + t.generate_seconds);
    };
    absl::StatusOr<eval::PasskeyResult> result = eval::RunPasskey(**model, o, progress);
    if (!result.ok()) return ReportError(kCommand, result.status());
    json["runs"].push_back(eval::PasskeyResultToJson(*result, o));
    absl::StrAppend(&md, eval::PasskeyResultToMarkdown(*result, o), "\n");
  }
  const std::string stem = args.out_dir + "/" + args.name;
  if (absl::Status s = WriteFileAtomically(stem + ".json", json.dump(1) + "\n"); !s.ok()) {
    return ReportError(kCommand, s);
  }
  if (absl::Status s = WriteFileAtomically(stem + ".md", md); !s.ok()) {
    return ReportError(kCommand, s);
  }
  std::printf("%swrote %s.json and %s.md\n", md.c_str(), stem.c_str(), stem.c_str());
  if (args.no_plot) return 0;
  DrawPlotOrWarn("eval-passkey", args.python, "plot_passkey.py",
                 {stem + ".json", "--out", stem + ".png"}, stem + ".json is");
  return 0;
}

}  // namespace ctxmem::cli
