#include "common/service/openai_response.h"

#include "absl/strings/str_cat.h"
#include "common/service/generate_call.h"
#include "common/service/metrics_endpoint.h"
#include "nlohmann/json.hpp"

namespace ctxmem::service {
namespace {

using nlohmann::json;

constexpr size_t kMaxMessageBytes = 4096;

// Invalid UTF-8 cannot reach here (prompts are checked, decoded text is whole characters), but
// dump() would throw on it: replace instead.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string Event(const json& j) { return absl::StrCat("data: ", Dump(j), "\n\n"); }

bool IsChat(const OpenAiResponseHeader& h) {
  return h.endpoint == OpenAiEndpoint::kChatCompletions;
}

json Base(const OpenAiResponseHeader& h, bool chunk) {
  const char* object =
      IsChat(h) ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  return json{{"id", h.id}, {"object", object}, {"created", h.created}, {"model", h.model}};
}

json Usage(const v1::GenerateDone& done) {
  const v1::Usage& u = done.usage();
  return json{{"prompt_tokens", u.prompt_tokens()},
              {"completion_tokens", u.generated_tokens()},
              {"total_tokens", u.prompt_tokens() + u.generated_tokens()},
              {"memory_entries", u.memory_entries()},
              {"ttft_seconds", done.timings().ttft_seconds()}};
}

json Extension(const v1::GenerateDone& done) {
  const v1::GenerateTimings& t = done.timings();
  return json{{"request_id", done.request_id()},    {"stop_reason", done.stop_reason()},
              {"fetch_seconds", t.fetch_seconds()}, {"load_seconds", t.load_seconds()},
              {"ttft_seconds", t.ttft_seconds()},   {"total_seconds", t.total_seconds()},
              {"cache_hit", t.cache_hit()}};
}

// One choice; `text` is the whole answer or a delta, `finish` null while streaming.
json Choice(const OpenAiResponseHeader& h, bool chunk, const json& content, const json& finish) {
  json choice{{"index", 0}, {"finish_reason", finish}};
  if (IsChat(h)) {
    choice[chunk ? "delta" : "message"] = content;
    choice["logprobs"] = nullptr;
  } else {
    choice["text"] = content;
    choice["logprobs"] = nullptr;
  }
  return choice;
}

const char* ErrorType(int http_status) {
  switch (http_status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 429:
      return "rate_limit_error";
    default:
      return http_status >= 500 ? "server_error" : "invalid_request_error";
  }
}

}  // namespace

std::string OpenAiResponseId(OpenAiEndpoint endpoint, absl::string_view request_id) {
  return absl::StrCat(endpoint == OpenAiEndpoint::kChatCompletions ? "chatcmpl-" : "cmpl-",
                      request_id);
}

std::string CompletionBody(const OpenAiResponseHeader& header, const v1::GenerateDone& done) {
  json body = Base(header, /*chunk=*/false);
  const json content =
      IsChat(header) ? json{{"role", "assistant"}, {"content", done.text()}} : json(done.text());
  body["choices"] =
      json::array({Choice(header, false, content, std::string(FinishReason(done.stop_reason())))});
  body["usage"] = Usage(done);
  body["ctxmem"] = Extension(done);
  return Dump(body);
}

std::string RoleChunkEvent(const OpenAiResponseHeader& header) {
  json body = Base(header, true);
  body["choices"] =
      json::array({Choice(header, true, json{{"role", "assistant"}, {"content", ""}}, nullptr)});
  return Event(body);
}

std::string TextChunkEvent(const OpenAiResponseHeader& header, absl::string_view text) {
  json body = Base(header, true);
  const json content = IsChat(header) ? json{{"content", text}} : json(text);
  body["choices"] = json::array({Choice(header, true, content, nullptr)});
  return Event(body);
}

std::string FinishChunkEvent(const OpenAiResponseHeader& header, const v1::GenerateDone& done) {
  json body = Base(header, true);
  const json content = IsChat(header) ? json::object() : json("");
  body["choices"] =
      json::array({Choice(header, true, content, std::string(FinishReason(done.stop_reason())))});
  body["ctxmem"] = Extension(done);
  return Event(body);
}

std::string UsageChunkEvent(const OpenAiResponseHeader& header, const v1::GenerateDone& done) {
  json body = Base(header, true);
  body["choices"] = json::array();
  body["usage"] = Usage(done);
  return Event(body);
}

std::string ErrorEvent(const absl::Status& status) {
  return absl::StrCat("data: ", ErrorBody(status), "\n\n");
}

std::string DoneEvent() { return "data: [DONE]\n\n"; }

absl::string_view FinishReason(absl::string_view stop_reason) {
  return stop_reason == "eos" || stop_reason == "stop_string" ? "stop" : "length";
}

int HttpStatusOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kResourceExhausted:
      return IsOverloaded(status) ? 429 : 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kCancelled:
      return 499;  // the client closed the request (nginx's code); it sees nothing
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

std::string ErrorBody(const absl::Status& status) {
  std::string message(status.message());
  if (message.size() > kMaxMessageBytes) {
    message.resize(kMaxMessageBytes - 3);
    message += "...";
  }
  const int http = HttpStatusOf(status);
  return Dump(json{{"error",
                    {{"message", message},
                     {"type", ErrorType(http)},
                     {"param", nullptr},
                     {"code", StatusCodeName(static_cast<grpc::StatusCode>(status.code()))}}}});
}

std::string ModelsBody(absl::string_view model, int64_t created) {
  return Dump(json{
      {"object", "list"},
      {"data",
       json::array({json{
           {"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "ctxmem"}}})}});
}

}  // namespace ctxmem::service
