#pragma once
// S3Observer: what an S3Client tells whoever watches it (the servers' Prometheus metrics,
// common/service/s3_store_metrics.h; tests): every HTTP attempt with its operation, answer,
// bytes and time, every retry and every resumed download. The client calls it from the thread
// that made the call, after the attempt; it must not call back into the client.
// Thread-safety: implementations must be thread-safe (S3Client calls them concurrently).

#include <cstdint>

#include "absl/strings/string_view.h"

namespace ctxmem::blob {

// The S3 operations, as metric labels: "put", "get", "head", "list", "delete",
// "create_multipart", "upload_part", "complete_multipart", "abort_multipart".
struct S3Attempt {
  absl::string_view op;
  long http_status = 0;         // the answer's HTTP status; 0 = none (connect error, timeout)
  uint64_t bytes_sent = 0;      // request body bytes handed to the connection
  uint64_t bytes_received = 0;  // response body bytes received (error bodies included)
  double seconds = 0;           // wall time of the attempt, signing included
};

class S3Observer {
 public:
  virtual ~S3Observer() = default;
  // One HTTP attempt finished (whatever its outcome).
  virtual void OnAttempt(const S3Attempt& attempt) = 0;
  // The client is about to retry `op` after a failed attempt (backoff follows).
  virtual void OnRetry(absl::string_view op) = 0;
  // A GET whose body broke is continued with a Range from the last byte received.
  virtual void OnResume(absl::string_view op) = 0;
};

}  // namespace ctxmem::blob
