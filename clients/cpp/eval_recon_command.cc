#include "clients/cpp/eval_recon_command.h"

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "clients/cpp/plot_runner.h"
#include "common/eval/recon_eval.h"
#include "common/learned/learned_method.h"
#include "nlohmann/json.hpp"

namespace ctxmem::cli {
namespace {

constexpr char kWeightsName[] = "rcc_weights";  // the --weights bridge's registered name

}  // namespace

CLI::App* AddEvalReconCommand(CLI::App* app, EvalReconArgs* args) {
  CLI::App* cmd = app->add_subcommand(
      "eval-recon", "Window reconstruction from a memory: RCC vs pruners at the same entries");
  AddModelFlags(cmd, &args->model);
  AddCompressionFlags(cmd, &args->compression);
  cmd->add_option("--text", args->text, "Held-out text file")->required();
  cmd->add_option("--methods", args->methods, "rcc, stride, or pruner names, comma-separated")
      ->capture_default_str();
  cmd->add_option("--rate", args->rates, "Compression rate(s) R: W/R entries, e.g. 8,32")
      ->capture_default_str();
  cmd->add_option("--window", args->window, "Window W (tokens)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--weights", args->weights, "Trained rcc bridge (.safetensors) for 'rcc'");
  cmd->add_option("--max-windows", args->max_windows, "Windows evaluated")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--hint", args->hint, "Hint tokens h")->capture_default_str();
  cmd->add_option("--greedy-tokens", args->greedy_tokens, "Greedy reconstruction length")
      ->capture_default_str();
  cmd->add_option("--continuation", args->continuation, "Continuation chunk (tokens)")
      ->capture_default_str();
  cmd->add_option("--out", args->out_dir, "Output folder")->required();
  cmd->add_option("--python", args->python, "Python with matplotlib for the plot")
      ->envname("CTXMEM_PYTHON")
      ->capture_default_str();
  cmd->add_flag("--no-plot", args->no_plot, "Write JSON and markdown only");
  return cmd;
}

int RunEvalRecon(const EvalReconArgs& args) {
  const std::string kCommand = "eval-recon";
  absl::StatusOr<compress::CompressionConfig> base = BaseConfig(args.compression);
  if (!base.ok()) return ReportError(kCommand, base.status());
  absl::StatusOr<std::vector<int64_t>> rates = ParseCounts(args.rates);
  if (!rates.ok()) return ReportError(kCommand, rates.status());
  eval::ReconOptions options;
  options.methods = SplitList(args.methods);
  options.window = args.window;
  options.max_windows = args.max_windows;
  options.hint = args.hint;
  options.greedy_tokens = args.greedy_tokens;
  options.continuation = args.continuation;
  options.n_sinks = args.compression.n_sink_tokens;
  options.base = *base;
  if (!args.weights.empty()) {
    if (absl::Status s = learned::RegisterLearned(kWeightsName, args.weights); !s.ok()) {
      return ReportError(kCommand, s);
    }
    options.rcc_bridge = kWeightsName;
  }
  for (int64_t r : *rates) {
    options.rate = r;
    if (absl::Status s = options.Validate(); !s.ok()) return ReportError(kCommand, s);
  }
  if (absl::Status s = MakeOutputDir(args.out_dir); !s.ok()) return ReportError(kCommand, s);
  absl::StatusOr<ModelAndText> loaded = LoadModelAndText(args.model, args.text);
  if (!loaded.ok()) return ReportError(kCommand, loaded.status());
  std::vector<eval::ReconRow> rows;
  for (int64_t r : *rates) {
    options.rate = r;
    auto progress = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
    absl::StatusOr<std::vector<eval::ReconRow>> got =
        eval::RunReconEval(loaded->model->transformer(), loaded->ids, options, progress);
    if (!got.ok()) return ReportError(kCommand, got.status());
    rows.insert(rows.end(), got->begin(), got->end());
  }
  nlohmann::json json = eval::ReconRowsToJson(rows, options);
  json["model"] = loaded->model->path();
  json["text"] = args.text;
  if (!args.weights.empty()) json["weights"] = args.weights;
  const std::string md = eval::ReconRowsToMarkdown(rows);
  const std::string stem = args.out_dir + "/eval_recon";
  if (absl::Status s = WriteFileAtomically(stem + ".json", json.dump(1) + "\n"); !s.ok()) {
    return ReportError(kCommand, s);
  }
  if (absl::Status s = WriteFileAtomically(stem + ".md", md); !s.ok()) {
    return ReportError(kCommand, s);
  }
  std::printf("%swrote %s.json and %s.md\n", md.c_str(), stem.c_str(), stem.c_str());
  if (args.no_plot) return 0;
  DrawPlotOrWarn(kCommand, args.python, "plot_recon.py", {stem + ".json", "--out", stem + ".png"},
                 stem + ".json is");
  return 0;
}

}  // namespace ctxmem::cli
