#include "clients/cpp/ask_command.h"

#include <absl/strings/str_split.h>

#include <cstdio>

#include "ctxmem/v1/decoder.grpc.pb.h"

namespace ctxmem::cli {
namespace {

v1::GenerateRequest MakeRequest(const AskArgs& args) {
  v1::GenerateRequest request;
  for (absl::string_view id : absl::StrSplit(args.memory_ids, ',', absl::SkipWhitespace())) {
    request.add_memory_ids(std::string(id));
  }
  if (args.chat) {
    v1::ChatMessages* chat = request.mutable_chat();
    if (!args.system.empty()) {
      v1::ChatMessage* system = chat->add_messages();
      system->set_role("system");
      system->set_content(args.system);
    }
    v1::ChatMessage* user = chat->add_messages();
    user->set_role("user");
    user->set_content(args.question);
  } else {
    request.set_prompt(args.question);
  }
  v1::SamplingParams* sampling = request.mutable_sampling();
  sampling->set_temperature(args.temperature);
  sampling->set_top_p(args.top_p);
  sampling->set_top_k(args.top_k);
  sampling->set_seed(args.seed);
  sampling->set_repetition_penalty(args.repetition_penalty);
  request.set_max_tokens(args.max_tokens);
  for (const std::string& s : args.stop) request.add_stop(s);
  return request;
}

}  // namespace

CLI::App* AddAskCommand(CLI::App* app, AskArgs* args) {
  CLI::App* cmd =
      app->add_subcommand("ask", "Ask a question about a memory (Generate on the decoder)");
  cmd->add_option("memory_id", args->memory_ids,
                  "memory id, or several separated by commas (read in order); \"\" = none")
      ->required();
  cmd->add_option("question", args->question, "the prompt (or the user message with --chat)")
      ->required();
  cmd->add_flag("--chat", args->chat, "wrap the question in the model's chat template");
  cmd->add_option("--system", args->system, "system message (with --chat)");
  cmd->add_option("--max-tokens", args->max_tokens, "tokens to generate at most")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--temperature", args->temperature, "0 = greedy")->capture_default_str();
  cmd->add_option("--top-p", args->top_p, "nucleus sampling (1 = off)")->capture_default_str();
  cmd->add_option("--top-k", args->top_k, "top-k sampling (0 = off)")->capture_default_str();
  cmd->add_option("--repetition-penalty", args->repetition_penalty, "1 = off")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "sampling seed")->capture_default_str();
  cmd->add_option("--stop", args->stop, "stop string (repeatable)");
  cmd->add_flag("--json", args->json, "print only the final GenerateDone event as JSON");
  AddServiceFlags(cmd, "decoder", kDefaultDecoderAddress, 0, &args->service);
  return cmd;
}

int RunAsk(const AskArgs& args) {
  if (args.question.empty()) {
    return ReportServiceError("ask", absl::InvalidArgumentError("empty question"));
  }
  auto channel = MakeChannel(args.service);
  if (!channel.ok()) return ReportServiceError("ask", channel.status());
  auto stub = v1::Decoder::NewStub(*channel);
  grpc::ClientContext context;
  if (absl::Status s = PrepareContext(args.service, &context); !s.ok()) {
    return ReportServiceError("ask", s);
  }
  v1::GenerateRequest request = MakeRequest(args);
  auto stream = stub->Generate(&context, request);
  v1::GenerateEvent event;
  v1::GenerateDone done;
  bool have_done = false;
  bool printed = false;
  while (stream->Read(&event)) {
    if (event.has_delta()) {
      if (!args.json && !event.delta().text().empty()) {
        std::fwrite(event.delta().text().data(), 1, event.delta().text().size(), stdout);
        std::fflush(stdout);
        printed = true;
      }
    } else if (event.has_done()) {
      done = event.done();
      have_done = true;
    }
  }
  grpc::Status status = stream->Finish();
  if (printed) std::printf("\n");
  if (!status.ok()) return ReportRpcError("ask", status);
  if (!have_done) {
    return ReportServiceError(
        "ask", absl::InternalError("the server ended the call without a done event"));
  }
  if (args.json) {
    std::printf("%s\n", ToJson(done).c_str());
    return 0;
  }
  const v1::Usage& u = done.usage();
  const v1::GenerateTimings& t = done.timings();
  double decode_seconds = t.total_seconds() - t.ttft_seconds();
  double tokens_per_second = u.generated_tokens() > 1 && decode_seconds > 0
                                 ? static_cast<double>(u.generated_tokens() - 1) / decode_seconds
                                 : 0;
  std::fprintf(stderr,
               "[%s] prompt %lld tokens, memory %lld entries, generated %lld tokens (%s) | "
               "ttft %.3f s, fetch %.3f s, load %.3f s, total %.3f s, %.1f tok/s, cache %s\n",
               done.request_id().c_str(), static_cast<long long>(u.prompt_tokens()),
               static_cast<long long>(u.memory_entries()),
               static_cast<long long>(u.generated_tokens()), done.stop_reason().c_str(),
               t.ttft_seconds(), t.fetch_seconds(), t.load_seconds(), t.total_seconds(),
               tokens_per_second, t.cache_hit() ? "hit" : "miss");
  return 0;
}

}  // namespace ctxmem::cli
