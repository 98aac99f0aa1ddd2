#pragma once
// DecoderService: the gRPC Decoder (decoder.proto) over the callback API, a thin adapter over
// the transport-independent calls in common/service (GenerateCall, ScoreCall), which
// authenticate, validate, admit (per-tenant stream limit, bounded work queue) and run the work
// on the WorkQueue's workers. Generate streams text deltas through a serialized write queue
// (one write in flight at a time) and ends with GenerateDone; a client that cancels or
// disconnects stops generation at the next token.
// Thread-safety: thread-safe; gRPC calls the handlers from its own threads.

#include <grpcpp/grpcpp.h>

#include "common/service/decoder_deps.h"
#include "ctxmem/v1/decoder.grpc.pb.h"

namespace ctxmem::decoder {

using DecoderServiceDeps = service::DecoderDeps;

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
