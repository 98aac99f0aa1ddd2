#include "clients/cpp/probe_command.h"

#include <chrono>
#include <cstdio>
#include <vector>

#include "absl/strings/str_cat.h"
#include "clients/cpp/plot_runner.h"
#include "common/compress/config_json.h"
#include "common/compress/token_source.h"
#include "common/eval/memory_probe.h"
#include "common/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace ctxmem::cli {

CLI::App* AddProbeCommand(CLI::App* app, ProbeArgs* args) {
  CLI::App* cmd = app->add_subcommand(
      "probe", "Memory probing: retention, forgetting curve, usage, distribution (+ plots)");
  AddModelFlags(cmd, &args->model);
  AddCompressionFlags(cmd, &args->compression);
  cmd->add_option("--text", args->text_path, "UTF-8 text file")->required();
  cmd->add_option("--pruner", args->pruners, "Pruner name(s), comma-separated")
      ->capture_default_str();
  cmd->add_option("--memory-type", args->memory_type, "FM | IM | IMDC | FIXED_INCREMENTAL | ...")
      ->capture_default_str();
  cmd->add_option("--chunk", args->chunk_size, "Chunk size C (tokens)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--memory", args->memory_size, "Memory size M (entries per kv head)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--max-tokens", args->max_tokens, "Probe the first N tokens (0 = all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_flag("--no-usage", args->no_usage, "Skip the attention-based memory usage");
  cmd->add_option("--out", args->out_dir, "Output folder (probe.json, *.png)")->required();
  cmd->add_option("--python", args->python, "Python with matplotlib for the plots")
      ->envname("CTXMEM_PYTHON")
      ->capture_default_str();
  cmd->add_flag("--no-plot", args->no_plot, "Write the JSON only");
  return cmd;
}

int RunProbe(const ProbeArgs& args) {
  const std::string kCommand = "probe";
  absl::StatusOr<compress::CompressionConfig> base = BaseConfig(args.compression);
  if (!base.ok()) return ReportError(kCommand, base.status());
  absl::StatusOr<compress::MemoryTypeChoice> type = compress::ParseMemoryType(args.memory_type);
  if (!type.ok()) return ReportError(kCommand, type.status());
  std::vector<compress::CompressionConfig> configs;
  for (const std::string& pruner : SplitList(args.pruners)) {
    compress::CompressionConfig c = *base;
    c.pruner = pruner;
    c.memory_type = type->type;
    c.decremental_chunk = type->decremental_chunk;
    c.chunk_size = args.chunk_size;
    c.memory_size = args.memory_size;
    if (absl::Status s = c.Validate(); !s.ok()) return ReportError(kCommand, s);
    configs.push_back(c);
  }
  if (configs.empty()) {
    return ReportError(kCommand, absl::InvalidArgumentError("--pruner names no pruner"));
  }
  if (absl::Status s = MakeOutputDir(args.out_dir); !s.ok()) return ReportError(kCommand, s);
  absl::StatusOr<ModelAndText> loaded = LoadModelAndText(args.model, args.text_path);
  if (!loaded.ok()) return ReportError(kCommand, loaded.status());
  const std::unique_ptr<model::Model>& model = loaded->model;
  std::vector<int32_t>* ids = &loaded->ids;
  if (args.max_tokens > 0 && static_cast<int64_t>(ids->size()) > args.max_tokens) {
    ids->resize(args.max_tokens);
  }
  std::fprintf(stderr, "%s: probing %zu tokens\n", args.text_path.c_str(), ids->size());

  nlohmann::json out;
  out["text"] = args.text_path;
  out["model"] = model->path();
  out["n_tokens"] = ids->size();
  out["runs"] = nlohmann::json::array();
  eval::ProbeOptions options;
  options.attention_usage = !args.no_usage;
  for (const compress::CompressionConfig& config : configs) {
    const std::string label = absl::StrCat(
        config.pruner, " ",
        std::string(compress::MemoryTypeName(config.memory_type, config.decremental_chunk)));
    compress::CompressHooks hooks;
    hooks.on_progress = [&](const compress::CompressProgress& p) {
      std::fprintf(stderr, "\r%s: chunk %lld, %lld/%lld tokens, memory %lld   ", label.c_str(),
                   static_cast<long long>(p.step), static_cast<long long>(p.n_tokens_done),
                   static_cast<long long>(p.n_tokens_total), static_cast<long long>(p.memory_len));
    };
    compress::SpanTokenSource source(*ids);
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<eval::ProbeRun> run =
        eval::CompressAndProbe(model->transformer(), source, config, options, hooks);
    std::fprintf(stderr, "\n");
    if (!run.ok()) return ReportError(kCommand, run.status());
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const eval::LayerProbe& mean = run->probe.mean;
    std::printf("%-24s steps %lld  final forgetting %.4f  final keep rate %.4f  (%.1f s)\n",
                label.c_str(), static_cast<long long>(run->probe.n_steps()),
                mean.forgetting.empty() ? 0.0 : mean.forgetting.back(),
                mean.keep_rate.empty() ? 0.0 : mean.keep_rate.back(), seconds);
    out["runs"].push_back({{"label", label},
                           {"config", compress::CompressionConfigToJson(config)},
                           {"plan", run->result.plan.Describe()},
                           {"seconds", seconds},
                           {"probe", eval::ProbeDataToJson(run->probe)}});
  }
  const std::string json_path = args.out_dir + "/probe.json";
  if (absl::Status s = WriteFileAtomically(json_path, out.dump() + "\n"); !s.ok()) {
    return ReportError(kCommand, s);
  }
  std::printf("wrote %s\n", json_path.c_str());
  if (args.no_plot) return 0;
  DrawPlotOrWarn("probe", args.python, "plot_probe.py", {json_path, "--out", args.out_dir},
                 json_path + " is");
  return 0;
}

}  // namespace ctxmem::cli
