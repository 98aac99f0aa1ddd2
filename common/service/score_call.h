#pragma once
// ScoreCall: one Score request (log-likelihood of a continuation after memories) from admission
// to its final status, independent of the transport; the gRPC Decoder.Score handler is a thin
// adapter over it. Authentication, validation, the work queue, metrics and log lines are here.
// Thread-safety: Start is thread-safe; on_finish runs once, on the caller's thread for
// admission errors or on a worker.

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/service/decoder_deps.h"
#include "ctxmem/v1/decoder.pb.h"

namespace ctxmem::service {

struct ScoreCallOptions {
  std::string method = "Score";  // label in ctxmem_requests_total{method} and the log lines
  std::string authorization;     // the request's "authorization" value ("" when absent)
};

class ScoreCall {
 public:
  // Authenticates, takes `request` (or the transport's error making one), validates it
  // (ParseScoreRequest) and queues the work, which fills `*response` (borrowed; must stay valid
  // until on_finish has returned) and calls `on_finish` exactly once with the final status.
  // `deps` must outlive the call.
  static void Start(const DecoderDeps& deps, ScoreCallOptions options,
                    absl::StatusOr<v1::ScoreRequest> request, v1::ScoreResponse* response,
                    std::function<void(const absl::Status&)> on_finish);
};

}  // namespace ctxmem::service
