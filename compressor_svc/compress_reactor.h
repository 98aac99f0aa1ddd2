#pragma once
// CompressReactor: one Compress call. Reads the start (admission happens right there), then
// the context pieces, then hands the job to the service's work queues; events go out through
// a serialized write queue; messages travel as raw bytes (ParseCompressRequest) (progress events
// coalesce: a newer one replaces one not yet sent). Lifetime: reference-counted; gRPC holds one
// reference until OnDone, a queued or running job holds one until it ends, so a worker never
// touches a deleted reactor. Thread-safety: thread-safe (reactions, workers and OnCancel may run at
// the same time).

#include <absl/base/thread_annotations.h>
#include <absl/status/status.h>
#include <absl/synchronization/mutex.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "common/service/admission_gate.h"
#include "common/service/compress_job.h"
#include "common/service/tenant_stream_limiter.h"
#include "ctxmem/v1/compressor.grpc.pb.h"

namespace ctxmem::compressor_svc {

class CompressorService;

class CompressReactor final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // Authenticates and starts reading. `service` and `context` outlive the reactor.
  CompressReactor(CompressorService* service, grpc::CallbackServerContext* context);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  ~CompressReactor() override = default;
  void Ref() { refs_.fetch_add(1); }
  void Unref() {
    if (refs_.fetch_sub(1) == 1) delete this;
  }

  absl::Status HandleMessage();  // the message in request_
  absl::Status HandleStart(const ctxmem::v1::CompressStart& start);
  void EndOfUpload();  // half-close: queue the prepare step
  // Prepare queue. True when the job went on to the compute queue (which then owns the
  // admission ticket); false when the call is over (the caller releases the ticket).
  bool PrepareOnWorker();
  void RunOnWorker();  // compute queue
  void SetSubmitted(bool submitted);
  void ReleaseTicket();
  void SendDone(const service::CompressJobOutcome& outcome);
  // Queues an event; progress events replace a queued, unsent progress event.
  void Send(ctxmem::v1::CompressEvent event);
  // Ends the call with `status` after the queued events (first call wins).
  void FinishWith(const absl::Status& status);
  // Starts the next write or the finish, if one is due. Never called with mu_ held.
  void Pump();
  bool cancelled() const { return cancelled_.load(); }

  // Constant after construction.
  CompressorService* const service_;
  grpc::CallbackServerContext* const context_;
  const std::chrono::steady_clock::time_point start_time_;
  const std::string request_id_;

  std::atomic<int> refs_{1};  // gRPC's reference, dropped in OnDone
  std::atomic<bool> cancelled_{false};

  // Used by reactions only (reads are sequential), then by one worker at a time.
  grpc::ByteBuffer request_;  // the message being read, serialized CompressRequest
  std::string tenant_;
  std::unique_ptr<service::CompressJob> job_;
  service::StreamLease lease_;
  std::chrono::steady_clock::time_point queued_at_;
  double queue_seconds_ = 0;

  absl::Mutex mu_;
  std::deque<ctxmem::v1::CompressEvent> pending_ ABSL_GUARDED_BY(mu_);
  grpc::ByteBuffer in_flight_ ABSL_GUARDED_BY(mu_);  // the serialized event being written
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> finish_ ABSL_GUARDED_BY(mu_);  // set once: how the call ends
  bool finish_started_ ABSL_GUARDED_BY(mu_) = false;
  // Released when the call ends before reaching the queues, else when its worker is done.
  service::AdmissionTicket ticket_ ABSL_GUARDED_BY(mu_);
  bool submitted_ ABSL_GUARDED_BY(mu_) = false;  // the job was handed to the work queues
};

}  // namespace ctxmem::compressor_svc
