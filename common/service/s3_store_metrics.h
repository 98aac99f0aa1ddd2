#pragma once
// S3StoreMetrics: the S3 store's Prometheus families, fed by the S3 client as an S3Observer
// (both servers: CompressorMetrics::s3(), DecoderMetrics::s3()):
//   ctxmem_s3_requests_total{op, status}   HTTP attempts; status = the HTTP code, "error" when
//                                           no answer came (connect error, timeout, reset)
//   ctxmem_s3_request_seconds{op}          wall time per attempt (histogram)
//   ctxmem_s3_bytes_total{op, direction}   body bytes, direction = "sent" | "received"
//   ctxmem_s3_retries_total{op}            attempts repeated after a retryable failure
//   ctxmem_s3_resumes_total                downloads continued with a Range after a break
// op is S3Attempt::op (put, get, head, list, delete, create_multipart, upload_part,
// complete_multipart, abort_multipart). With the directory store the families stay empty.
// Thread-safety: thread-safe (prometheus-cpp families and metrics are).

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "absl/strings/string_view.h"
#include "common/blob/s3_observer.h"

namespace ctxmem::service {

class S3StoreMetrics final : public blob::S3Observer {
 public:
  // Registers the families in `registry`, which must outlive this object.
  explicit S3StoreMetrics(prometheus::Registry& registry);
  S3StoreMetrics(const S3StoreMetrics&) = delete;
  S3StoreMetrics& operator=(const S3StoreMetrics&) = delete;

  void OnAttempt(const blob::S3Attempt& attempt) override;
  void OnRetry(absl::string_view op) override;
  void OnResume(absl::string_view op) override;

 private:
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* seconds_;
  prometheus::Family<prometheus::Counter>* bytes_;
  prometheus::Family<prometheus::Counter>* retries_;
  prometheus::Counter* resumes_;
};

}  // namespace ctxmem::service
