#include "common/service/s3_store_metrics.h"

#include <string>

namespace ctxmem::service {

S3StoreMetrics::S3StoreMetrics(prometheus::Registry& registry) {
  requests_ = &prometheus::BuildCounter()
                   .Name("ctxmem_s3_requests_total")
                   .Help("S3 HTTP attempts by operation and HTTP status (\"error\" = no answer)")
                   .Register(registry);
  seconds_ = &prometheus::BuildHistogram()
                  .Name("ctxmem_s3_request_seconds")
                  .Help("Seconds per S3 HTTP attempt by operation")
                  .Register(registry);
  bytes_ = &prometheus::BuildCounter()
                .Name("ctxmem_s3_bytes_total")
                .Help("S3 body bytes by operation and direction (sent | received)")
                .Register(registry);
  retries_ = &prometheus::BuildCounter()
                  .Name("ctxmem_s3_retries_total")
                  .Help("S3 attempts repeated after a retryable failure, by operation")
                  .Register(registry);
  resumes_ = &prometheus::BuildCounter()
                  .Name("ctxmem_s3_resumes_total")
                  .Help("S3 downloads continued with a Range after a broken body")
                  .Register(registry)
                  .Add({});
}

void S3StoreMetrics::OnAttempt(const blob::S3Attempt& attempt) {
  const std::string op(attempt.op);
  const std::string status =
      attempt.http_status == 0 ? "error" : std::to_string(attempt.http_status);
  requests_->Add({{"op", op}, {"status", status}}).Increment();
  seconds_
      ->Add({{"op", op}},
            prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                    0.25, 0.5, 1, 2.5, 5, 10, 30, 60})
      .Observe(attempt.seconds);
  bytes_->Add({{"op", op}, {"direction", "sent"}})
      .Increment(static_cast<double>(attempt.bytes_sent));
  bytes_->Add({{"op", op}, {"direction", "received"}})
      .Increment(static_cast<double>(attempt.bytes_received));
}

void S3StoreMetrics::OnRetry(absl::string_view op) {
  retries_->Add({{"op", std::string(op)}}).Increment();
}

void S3StoreMetrics::OnResume(absl::string_view /*op*/) { resumes_->Increment(); }

}  // namespace ctxmem::service
