#pragma once
// DecoderService: the gRPC Decoder (decoder.proto) over the callback API. Handlers only
// authenticate, validate, admit (per-tenant stream limit, bounded work queue) and reply; the
// work (fetching memories, decoding, generation, scoring) runs on the WorkQueue's workers.
// Generate streams text deltas through a serialized write queue (one write in flight at a
// time) and ends with GenerateDone; a client that cancels or disconnects stops generation at
// the next token.
// Thread-safety: thread-safe; gRPC calls the handlers from its own threads.

#include <grpcpp/grpcpp.h>

#include "common/model/model.h"
#include "common/service/decoder_metrics.h"
#include "common/service/decoder_request.h"
#include "common/service/memory_loader.h"
#include "common/service/metrics_endpoint.h"
#include "common/service/tenant_stream_limiter.h"
#include "common/service/token_auth.h"
#include "common/service/work_queue.h"
#include "ctxmem/v1/decoder.grpc.pb.h"

namespace ctxmem::decoder {

// What the service works with; every pointer is borrowed and must outlive the service and
// every call it is serving (the server is shut down and the queue drained first).
struct DecoderServiceDeps {
  const model::Model* model = nullptr;
  service::MemoryLoader* loader = nullptr;
  service::WorkQueue* queue = nullptr;
  service::TenantStreamLimiter* limiter = nullptr;
  const service::TokenAuth* auth = nullptr;
  service::MetricsEndpoint* endpoint = nullptr;
  service::DecoderMetrics* metrics = nullptr;
  service::DecoderLimits limits;
  bool log_content = false;  // prompts and answers in the logs (off: never)
};

// Both methods are registered raw (ByteBuffer in and out) and parse their requests with
// service::ParseRawMessage, so a malformed request is INVALID_ARGUMENT naming its type instead
// of gRPC's UNIMPLEMENTED with no message (common/service/raw_message.h).
using DecoderServiceBase = v1::Decoder::WithRawCallbackMethod_Generate<
    v1::Decoder::WithRawCallbackMethod_Score<v1::Decoder::Service>>;

class DecoderService final : public DecoderServiceBase {
 public:
  explicit DecoderService(DecoderServiceDeps deps) : deps_(std::move(deps)) {}

  // Raw: GenerateRequest in, GenerateEvent out.
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Generate(grpc::CallbackServerContext* context,
                                                       const grpc::ByteBuffer* request) override;
  // Raw: ScoreRequest -> ScoreResponse.
  grpc::ServerUnaryReactor* Score(grpc::CallbackServerContext* context,
                                  const grpc::ByteBuffer* raw_request,
                                  grpc::ByteBuffer* raw_response) override;

 private:
  const DecoderServiceDeps deps_;  // constant after construction
};

}  // namespace ctxmem::decoder
