#include "clients/cpp/generate_command.h"

#include <cstdio>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/model/generator.h"
#include "common/status.h"
#include "common/tokenizer/chat_template.h"
#include "common/tokenizer/tokenizer.h"

namespace ctxmem::cli {
namespace {

// The prompt ids and extra stop ids: the raw prompt, or with --chat the model's template
// rendered for [system], user, plus the opening of the assistant turn.
absl::Status BuildPrompt(const GenerateArgs& args, const tokenizer::Tokenizer& tok,
                         std::vector<int32_t>* ids, std::vector<int32_t>* stop_ids) {
  tokenizer::EncodeOptions encode;
  std::string text = args.prompt;
  if (args.chat) {
    const std::string& jinja = tok.spec().chat_template;
    if (jinja.empty()) {
      return absl::FailedPreconditionError("--chat: the model has no chat template");
    }
    CTXMEM_ASSIGN_OR_RETURN(tokenizer::ChatTemplateKind kind, tokenizer::DetectChatTemplate(jinja));
    std::vector<tokenizer::ChatMessage> messages;
    if (!args.system.empty()) messages.push_back({"system", args.system});
    messages.push_back({"user", args.prompt});
    CTXMEM_ASSIGN_OR_RETURN(text, tokenizer::ApplyChatTemplate(kind, jinja, messages,
                                                               /*add_generation_prompt=*/true));
    if (const int32_t im_end = tok.TokenId("<|im_end|>"); im_end >= 0) {
      stop_ids->push_back(im_end);
    }
  } else {
    encode.add_special = true;  // BOS where the model wants one; the template brings its own
  }
  CTXMEM_ASSIGN_OR_RETURN(*ids, tok.Encode(text, encode));
  return absl::OkStatus();
}

}  // namespace

CLI::App* AddGenerateCommand(CLI::App* app, GenerateArgs* args) {
  CLI::App* cmd = app->add_subcommand("generate", "Generate text from a prompt (streamed)");
  AddModelFlags(cmd, &args->model);
  cmd->add_option("--prompt", args->prompt, "Prompt text")->required();
  cmd->add_flag("--chat", args->chat, "Wrap the prompt in the model's chat template");
  cmd->add_option("--system", args->system, "System message (with --chat)");
  cmd->add_option("--max-tokens", args->max_tokens, "Most tokens to generate")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--temperature", args->temperature, "0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", args->top_k, "0 = off")->capture_default_str();
  cmd->add_option("--top-p", args->top_p, "1 = off")->capture_default_str();
  cmd->add_option("--repetition-penalty", args->repetition_penalty, "1 = off")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "Sampling seed")->capture_default_str();
  cmd->add_option("--stop", args->stop, "Stop string, C escapes allowed (\\n); repeatable");
  cmd->add_option("--max-context", args->max_context, "Context limit in tokens (0 = the model's)")
      ->capture_default_str();
  return cmd;
}

int RunGenerate(const GenerateArgs& args) {
  const std::string kCommand = "generate";
  model::GenerateOptions options;
  options.max_new_tokens = args.max_tokens;
  options.sampling.temperature = args.temperature;
  options.sampling.top_k = args.top_k;
  options.sampling.top_p = args.top_p;
  options.sampling.repetition_penalty = args.repetition_penalty;
  options.sampling.seed = args.seed;
  for (const std::string& stop : args.stop) {
    std::string unescaped, error;
    if (!absl::CUnescape(stop, &unescaped, &error)) {
      return ReportError(kCommand,
                         absl::InvalidArgumentError(absl::StrCat("--stop '", stop, "': ", error)));
    }
    options.stop_strings.push_back(std::move(unescaped));
  }
  options.max_context = args.max_context;
  if (absl::Status s = options.Validate(); !s.ok()) return ReportError(kCommand, s);

  absl::StatusOr<std::unique_ptr<model::Model>> model = LoadModel(args.model);
  if (!model.ok()) return ReportError(kCommand, model.status());
  const tokenizer::Tokenizer* tok = (*model)->tokenizer();
  if (tok == nullptr) {
    return ReportError(kCommand, absl::FailedPreconditionError(absl::StrCat(
                                     args.model.path, " has no tokenizer (tokenizer.json)")));
  }
  std::vector<int32_t> prompt_ids;
  if (absl::Status s = BuildPrompt(args, *tok, &prompt_ids, &options.stop_ids); !s.ok()) {
    return ReportError(kCommand, s);
  }

  const auto on_token = [](int32_t, std::string_view delta) {
    std::fwrite(delta.data(), 1, delta.size(), stdout);
    std::fflush(stdout);
    return true;
  };
  absl::StatusOr<model::GenerateResult> result =
      model::Generate(**model, prompt_ids, /*past=*/nullptr, options, on_token);
  if (!result.ok()) return ReportError(kCommand, result.status());
  std::fputc('\n', stdout);
  std::fflush(stdout);
  std::fprintf(stderr,
               "[prompt %lld tokens, generated %zu tokens, stop: %s] TTFT %.1f ms, "
               "prefill %.1f tokens/s, decode %.1f tokens/s\n",
               static_cast<long long>(result->n_prompt_tokens), result->ids.size(),
               std::string(model::StopReasonName(result->stop_reason)).c_str(),
               result->ttft_seconds * 1e3, result->prefill_tokens_per_second(),
               result->decode_tokens_per_second());
  return 0;
}

}  // namespace ctxmem::cli
