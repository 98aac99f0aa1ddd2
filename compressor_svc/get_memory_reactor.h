#pragma once
// GetMemoryReactor: one GetMemory call. Streams a verified, pinned blob from an offset in
// chunks of at most 1 MiB; the last chunk carries the SHA-256 of the whole file.
// Thread-safety: gRPC runs its reactions one at a time; deletes itself in OnDone.

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <string>

#include "common/blob/blob_store.h"
#include "common/service/raw_write_reactor.h"
#include "common/service/tenant_stream_limiter.h"
#include "ctxmem/v1/compressor.grpc.pb.h"

namespace ctxmem::compressor_svc {

class CompressorService;

inline constexpr uint64_t kMaxBlobChunkBytes = 1 << 20;
inline constexpr uint64_t kMinBlobChunkBytes = 4 << 10;

class GetMemoryReactor final : public service::RawWriteReactor<ctxmem::v1::BlobChunk> {
 public:
  // Authenticates, parses the serialized GetMemoryRequest, opens the blob and starts writing
  // (or finishes with the error).
  GetMemoryReactor(CompressorService* service, grpc::CallbackServerContext* context,
                   const grpc::ByteBuffer& raw_request);

  void OnWriteDone(bool ok) override;
  void OnDone() override { delete this; }

 private:
  absl::Status Open(grpc::CallbackServerContext* context, const grpc::ByteBuffer& raw_request);
  void NextWrite();
  void End(const absl::Status& status);

  CompressorService* const service_;
  service::StreamLease lease_;
  blob::BlobHandle handle_;  // pins the blob while it streams
  std::string sha256_;       // of the whole file
  uint64_t offset_ = 0;      // next byte to send
  uint64_t chunk_bytes_ = kMaxBlobChunkBytes;
  bool sent_last_ = false;
  ctxmem::v1::BlobChunk chunk_;  // the chunk being written
};

}  // namespace ctxmem::compressor_svc
