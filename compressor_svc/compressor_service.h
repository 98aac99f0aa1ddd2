#pragma once
// CompressorService: the gRPC Compressor service (proto/ctxmem/v1/compressor.proto) on the
// callback API. Handlers authenticate, validate, admit and reply; compressions run on two
// WorkQueues (prepare: tokenize + id + existence check; compute: the model), so a request for
// an existing memory is answered without waiting behind running compressions.
// Thread-safety: thread-safe (gRPC calls the handlers from many threads).

#include <absl/status/statusor.h>
#include <absl/strings/string_view.h>
#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>

#include "common/service/admission_gate.h"
#include "common/service/compress_job.h"
#include "common/service/tenant_stream_limiter.h"
#include "common/service/token_auth.h"
#include "common/service/work_queue.h"
#include "ctxmem/v1/compressor.grpc.pb.h"

namespace ctxmem::service {
class CompressorMetrics;
class MetricsEndpoint;
}  // namespace ctxmem::service

namespace ctxmem::compressor_svc {

struct CompressorServiceOptions {
  int64_t n_workers = 1;               // compressions running at once
  int64_t queue_depth = 4;             // admitted jobs beyond the running ones
  int64_t max_streams_per_tenant = 4;  // open Compress/GetMemory streams per tenant
  int64_t n_prepare_workers = 2;       // tokenization / id threads
  bool log_content = false;            // log context previews (off: no context text in logs)
};

// Every method is registered raw (ByteBuffer in and out): Compress requests are parsed by
// ParseCompressRequest, so a malformed message is INVALID_ARGUMENT instead of looking like the
// end of the upload; the others by service::ParseRawMessage, so a malformed request is
// INVALID_ARGUMENT naming its type instead of gRPC's UNIMPLEMENTED (common/service/raw_message.h).
using CompressorServiceBase = ctxmem::v1::Compressor::WithRawCallbackMethod_Compress<
    ctxmem::v1::Compressor::WithRawCallbackMethod_GetMemory<
        ctxmem::v1::Compressor::WithRawCallbackMethod_StatMemory<
            ctxmem::v1::Compressor::WithRawCallbackMethod_ListMemories<
                ctxmem::v1::Compressor::WithRawCallbackMethod_DeleteMemory<
                    ctxmem::v1::Compressor::Service>>>>>;

class CompressorService final : public CompressorServiceBase {
 public:
  // Borrowed pointers must outlive the service; `metrics` and `endpoint` may be null.
  CompressorService(service::CompressJobEnv env, const service::TokenAuth* auth,
                    service::MetricsEndpoint* endpoint, service::CompressorMetrics* metrics,
                    const CompressorServiceOptions& options);
  ~CompressorService() override;

  // Stops the work queues (after the gRPC server has shut down: every queued job belongs to a
  // finished or cancelled call and ends at once).
  void Shutdown();

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Compress(
      grpc::CallbackServerContext* context) override;
  // Raw: GetMemoryRequest in, BlobChunk out.
  grpc::ServerWriteReactor<grpc::ByteBuffer>* GetMemory(grpc::CallbackServerContext* context,
                                                        const grpc::ByteBuffer* request) override;
  // Raw: StatMemoryRequest -> MemoryInfo, ListMemoriesRequest -> ListMemoriesResponse,
  // DeleteMemoryRequest -> DeleteMemoryResponse.
  grpc::ServerUnaryReactor* StatMemory(grpc::CallbackServerContext* context,
                                       const grpc::ByteBuffer* raw_request,
                                       grpc::ByteBuffer* raw_response) override;
  grpc::ServerUnaryReactor* ListMemories(grpc::CallbackServerContext* context,
                                         const grpc::ByteBuffer* raw_request,
                                         grpc::ByteBuffer* raw_response) override;
  grpc::ServerUnaryReactor* DeleteMemory(grpc::CallbackServerContext* context,
                                         const grpc::ByteBuffer* raw_request,
                                         grpc::ByteBuffer* raw_response) override;

  // For the reactors (compress_reactor.cc, get_memory_reactor.cc).
  const service::CompressJobEnv& env() const { return env_; }
  const service::TokenAuth& auth() const { return *auth_; }
  const CompressorServiceOptions& options() const { return options_; }
  service::AdmissionGate& gate() { return gate_; }
  service::TenantStreamLimiter& limiter() { return limiter_; }
  service::WorkQueue& prepare_queue() { return prepare_queue_; }
  service::WorkQueue& compute_queue() { return compute_queue_; }
  service::CompressorMetrics* metrics() { return metrics_; }
  // ctxmem_requests_total{method, code}.
  void CountRequest(absl::string_view method, grpc::StatusCode code);
  // ctxmem_store_bytes / ctxmem_store_blobs from the store.
  void RefreshStoreGauges();

 private:
  // Constant after construction.
  const service::CompressJobEnv env_;
  const service::TokenAuth* auth_;
  service::MetricsEndpoint* endpoint_;
  service::CompressorMetrics* metrics_;
  const CompressorServiceOptions options_;

  service::AdmissionGate gate_;
  service::TenantStreamLimiter limiter_;
  service::WorkQueue prepare_queue_;
  service::WorkQueue compute_queue_;
};

}  // namespace ctxmem::compressor_svc
