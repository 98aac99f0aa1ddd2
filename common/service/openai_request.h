#pragma once
// OpenAiRequest: the request bodies of the OpenAI-compatible HTTP front (POST
// /v1/chat/completions and /v1/completions, docs/http_api.md) turned into the decoder's own
// v1::GenerateRequest, so the HTTP front runs exactly the gRPC path (GenerateCall). Only the
// shape is checked here; values (sampling ranges, max_tokens against the server's limit, chat
// roles, UTF-8) are validated by ParseGenerateRequest like every gRPC request. ctxmem's
// extension is the body field "memory_ids" (what the openai clients send with extra_body).
// Thread-safety: free functions.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ctxmem/v1/decoder.pb.h"

namespace ctxmem::service {

enum class OpenAiEndpoint { kChatCompletions, kCompletions };

// OpenAI's defaults where they differ from GenerateRequest's.
inline constexpr float kOpenAiDefaultTemperature = 1.0f;
inline constexpr int32_t kOpenAiCompletionsDefaultMaxTokens = 16;  // /v1/completions only

struct OpenAiRequest {
  OpenAiEndpoint endpoint = OpenAiEndpoint::kChatCompletions;
  std::string model;             // as the client named it (echoed in the response)
  bool stream = false;           // server-sent events
  bool include_usage = false;    // stream_options.include_usage: a last chunk carries usage
  v1::GenerateRequest generate;  // memory_ids, prompt or chat, sampling, max_tokens, stop
};

// Parses a JSON body. InvalidArgument naming the field for: a body that is not a JSON object,
// a missing or ill-typed field, n != 1, and what ctxmem does not do (tools, logprobs, echo,
// suffix, best_of > 1, non-zero presence/frequency penalties, token-id prompts, non-text
// content parts); NotFound when "model" is not `served_model` (the one /v1/models lists).
absl::StatusOr<OpenAiRequest> ParseOpenAiRequest(OpenAiEndpoint endpoint, absl::string_view body,
                                                 absl::string_view served_model);

}  // namespace ctxmem::service
