#include "clients/cpp/ppl_command.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/model/perplexity.h"
#include "common/tokenizer/tokenizer.h"

namespace ctxmem::cli {
CLI::App* AddPplCommand(CLI::App* app, PplArgs* args) {
  CLI::App* cmd = app->add_subcommand("ppl", "Perplexity of a model on a text file");
  AddModelFlags(cmd, &args->model);
  cmd->add_option("--text", args->text_path, "UTF-8 text file")->required();
  cmd->add_option("--ctx", args->ctx, "Window length in tokens")->capture_default_str();
  cmd->add_option("--max-tokens", args->max_tokens, "Score only the first N tokens (0 = all)")
      ->capture_default_str();
  return cmd;
}

int RunPpl(const PplArgs& args) {
  const std::string kCommand = "ppl";
  model::PerplexityOptions options;
  options.ctx = args.ctx;
  options.max_tokens = args.max_tokens;
  if (absl::Status s = options.Validate(); !s.ok()) return ReportError(kCommand, s);
  absl::StatusOr<ModelAndText> loaded = LoadModelAndText(args.model, args.text_path);
  if (!loaded.ok()) return ReportError(kCommand, loaded.status());
  const std::unique_ptr<model::Model>& model = loaded->model;
  const std::vector<int32_t>* ids = &loaded->ids;
  std::fprintf(stderr, "%s: %zu tokens\n", args.text_path.c_str(), ids->size());

  options.progress = [](const model::PerplexityProgress& p) {
    std::fprintf(stderr, "[%lld/%lld] ppl %.4f over %lld tokens, %.1f s\n",
                 static_cast<long long>(p.window), static_cast<long long>(p.n_windows), p.ppl,
                 static_cast<long long>(p.n_scored), p.seconds);
  };
  absl::StatusOr<model::PerplexityResult> r = model::EvaluatePerplexity(*model, *ids, options);
  if (!r.ok()) return ReportError(kCommand, r.status());
  std::printf("perplexity %.4f  (ctx %lld, %lld windows, %lld tokens scored, %.1f tokens/s)\n",
              r->ppl, static_cast<long long>(args.ctx), static_cast<long long>(r->n_windows),
              static_cast<long long>(r->n_scored), r->tokens_per_second);
  return 0;
}

}  // namespace ctxmem::cli
