#pragma once
// GenerateCall: one Generate request from admission to its final status, independent of the
// transport. Each front of decoder_svc (the gRPC Decoder.Generate handler, the OpenAI-compatible
// HTTP front) is a thin adapter: it turns its wire request into a v1::GenerateRequest, starts a
// GenerateCall, and writes the events it is handed in its own wire format. Admission
// (authentication, request validation, the tenant's stream limit, the bounded work queue),
// memory loading, generation, metrics (ctxmem_requests_total{method}, TTFT, streams) and log
// lines are all here, once.
// With DecoderDeps::batcher the stream decodes in the DecodeBatcher together with the other
// active streams (the worker only loads the memories).
// Thread-safety: Start is thread-safe; a call's sink is invoked from one thread at a time (the
// caller's thread for admission errors, then a worker, then the batcher's thread).

#include <atomic>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/service/decoder_deps.h"
#include "ctxmem/v1/decoder.pb.h"

namespace ctxmem::service {

// Where a call's output goes. Both functions must not throw.
struct GenerateSink {
  // On a worker, in order: one event per generated token (a TextDelta, text may be empty),
  // then, on success, one GenerateDone with usage and timings.
  std::function<void(v1::GenerateEvent event)> on_event;
  // Exactly once, last: the call's final status (OK after the done event). Runs on the thread
  // that called Start when admission fails, on the worker or the batcher's thread otherwise. Once
  // it returns the call touches nothing of the transport (the sink, `cancelled`) again.
  std::function<void(const absl::Status& status)> on_finish;
};

struct GenerateCallOptions {
  std::string method = "Generate";  // label in ctxmem_requests_total{method} and the log lines
  std::string authorization;        // the request's "authorization" value ("" when absent)
  std::string request_id;           // in logs and GenerateDone; "" = a new NewRequestId()
  // Set by the transport when the client cancels or goes away: generation stops at the next
  // token (Cancelled). Borrowed; must stay valid until on_finish has returned. Null = never.
  const std::atomic<bool>* cancelled = nullptr;
};

class GenerateCall {
 public:
  // Authenticates `options.authorization` (Unauthenticated), then takes `request` (a transport
  // that could not make one, e.g. malformed JSON, passes its error: reported only to an
  // authenticated caller), validates it against deps.limits (ParseGenerateRequest), takes a
  // stream slot of the tenant and queues the work; every failure goes to sink.on_finish. The
  // work loads the memories (NotFound for another tenant's), checks the context window
  // (ResourceExhausted), generates and streams; a full decode batch queue is ResourceExhausted
  // (IsOverloaded). `deps` must outlive the call.
  static void Start(const DecoderDeps& deps, GenerateCallOptions options,
                    absl::StatusOr<v1::GenerateRequest> request, GenerateSink sink);
};

// True for a ResourceExhausted saying the server is at capacity (the tenant's stream limit, a
// full work queue: retry later) rather than that the request is over a limit (max_tokens,
// prompt length: do not retry). The HTTP front answers 429 for the first, 400 for the second.
bool IsOverloaded(const absl::Status& status);

// ResourceExhausted when `n_tokens` (plus `reserve` tokens to generate/score after them) cannot
// follow `past` inside the model's context window; `what` names them in the message.
absl::Status CheckFitsContext(const model::Model& model, const model::KvCache& past,
                              int64_t n_tokens, int64_t reserve, absl::string_view what);

}  // namespace ctxmem::service
