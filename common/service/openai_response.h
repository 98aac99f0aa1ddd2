#pragma once
// OpenAiResponse: the JSON bodies of the OpenAI-compatible HTTP front (docs/http_api.md) made
// from the decoder's own events (v1::GenerateEvent), and the mapping of an absl::Status to an
// HTTP status with an OpenAI-shaped error body. Usage carries ctxmem's extensions:
// memory_entries and ttft_seconds, and a "ctxmem" object with the request id and timings.
// Thread-safety: free functions.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/service/openai_request.h"
#include "ctxmem/v1/decoder.pb.h"

namespace ctxmem::service {

// What every body of one response repeats.
struct OpenAiResponseHeader {
  OpenAiEndpoint endpoint = OpenAiEndpoint::kChatCompletions;
  std::string id;       // "chatcmpl-<request id>" / "cmpl-<request id>"
  int64_t created = 0;  // unix seconds
  std::string model;
};

// "chatcmpl-" or "cmpl-" + `request_id`.
std::string OpenAiResponseId(OpenAiEndpoint endpoint, absl::string_view request_id);

// The whole (non-streamed) chat.completion / text_completion object.
std::string CompletionBody(const OpenAiResponseHeader& header, const v1::GenerateDone& done);

// One server-sent event ("data: {...}\n\n") of a streamed response:
//   the first chat chunk (delta {"role": "assistant", "content": ""});
std::string RoleChunkEvent(const OpenAiResponseHeader& header);
//   a text delta;
std::string TextChunkEvent(const OpenAiResponseHeader& header, absl::string_view text);
//   the last choice chunk, with finish_reason;
std::string FinishChunkEvent(const OpenAiResponseHeader& header, const v1::GenerateDone& done);
//   stream_options.include_usage's chunk (empty choices, usage);
std::string UsageChunkEvent(const OpenAiResponseHeader& header, const v1::GenerateDone& done);
//   an error after the stream started ({"error": {...}});
std::string ErrorEvent(const absl::Status& status);
//   the end marker "data: [DONE]".
std::string DoneEvent();

// "stop" for eos/stop_string, "length" for max_tokens/context_limit.
absl::string_view FinishReason(absl::string_view stop_reason);

// HTTP status of a failed call (docs/http_api.md): InvalidArgument, FailedPrecondition,
// OutOfRange and ResourceExhausted for a request over a limit -> 400; Unauthenticated -> 401;
// PermissionDenied -> 403; NotFound -> 404; ResourceExhausted at capacity (IsOverloaded) -> 429;
// Cancelled -> 499; Unimplemented -> 501; Unavailable -> 503; DeadlineExceeded -> 504; others 500.
int HttpStatusOf(const absl::Status& status);

// {"error": {"message", "type", "param": null, "code"}}, as OpenAI's API writes errors; the
// message is the status's (cut at 4 KiB), code is the gRPC code's name ("NOT_FOUND").
std::string ErrorBody(const absl::Status& status);

// GET /v1/models: one model.
std::string ModelsBody(absl::string_view model, int64_t created);

}  // namespace ctxmem::service
