#include "clients/cpp/score_command.h"

#include <cstdio>

#include "common/compress/compressor.h"
#include "common/compress/memory_scorer.h"
#include "common/compress/token_source.h"
#include "common/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace ctxmem::cli {

CLI::App* AddScoreCommand(CLI::App* app, ScoreArgs* args) {
  CLI::App* cmd = app->add_subcommand(
      "score", "Log-likelihood of a continuation after a compressed context (library Score)");
  AddModelFlags(cmd, &args->model);
  AddCompressionFlags(cmd, &args->compression);
  cmd->add_option("--context", args->context, "Text file compressed into the memory")->required();
  cmd->add_option("--continuation", args->continuation, "Text file scored after it")->required();
  cmd->add_option("--pruner", args->pruner, "Method (a pruner name or rcc)")->capture_default_str();
  cmd->add_option("--chunk", args->chunk_size, "Chunk size C")->capture_default_str();
  cmd->add_option("--memory", args->memory_size, "Memory size M")->capture_default_str();
  cmd->add_option("--rcc-bridge", args->rcc_bridge, "rcc: stride or a --learned bridge name")
      ->capture_default_str();
  cmd->add_option("--rcc-window", args->rcc_window, "rcc: window W")->capture_default_str();
  cmd->add_option("--rcc-rate", args->rcc_rate, "rcc: rate r")->capture_default_str();
  return cmd;
}

int RunScore(const ScoreArgs& args) {
  const std::string kCommand = "score";
  absl::StatusOr<compress::CompressionConfig> config = BaseConfig(args.compression);
  if (!config.ok()) return ReportError(kCommand, config.status());
  config->pruner = args.pruner;
  config->chunk_size = args.chunk_size;
  config->memory_size = args.memory_size;
  config->rcc_bridge = args.rcc_bridge;
  config->rcc_window = args.rcc_window;
  config->rcc_rate = args.rcc_rate;
  if (absl::Status s = config->Validate(); !s.ok()) return ReportError(kCommand, s);
  absl::StatusOr<ModelAndText> loaded = LoadModelAndText(args.model, args.context);
  if (!loaded.ok()) return ReportError(kCommand, loaded.status());
  absl::StatusOr<std::string> text = ReadTextFile(args.continuation);
  if (!text.ok()) return ReportError(kCommand, text.status());
  absl::StatusOr<std::vector<int32_t>> next = loaded->model->tokenizer()->Encode(*text);
  if (!next.ok()) return ReportError(kCommand, next.status());
  const model::Transformer& tf = loaded->model->transformer();
  compress::SpanTokenSource source(loaded->ids);
  absl::StatusOr<compress::CompressResult> result = compress::Compress(tf, source, *config);
  if (!result.ok()) return ReportError(kCommand, result.status());
  absl::StatusOr<compress::ScoreResult> score =
      compress::ScoreContinuation(tf, result->memory, {}, *next);
  if (!score.ok()) return ReportError(kCommand, score.status());
  nlohmann::json j = {{"n_scored", score->n_scored},
                      {"total_nll", score->total_nll},
                      {"perplexity", score->perplexity},
                      {"memory_len", result->memory.len()}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace ctxmem::cli
