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

class DecoderService final : public v1::Decoder::CallbackService {
 public:
  explicit DecoderService(DecoderServiceDeps deps) : deps_(std::move(deps)) {}

  grpc::ServerWriteReactor<v1::GenerateEvent>* Generate(
      grpc::CallbackServerContext* context, const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Score(grpc::CallbackServerContext* context,
                                  const v1::ScoreRequest* request,
                                  v1::ScoreResponse* response) override;

 private:
  const DecoderServiceDeps deps_;  // constant after construction
};

}  // namespace ctxmem::decoder
