#pragma once
// BlobFetcher: the decoder's client of the compressors' blob RPCs. Fetch() downloads a memory
// blob with GetMemory from the replica that owns its id (ReplicaRing), resuming from the last
// received offset when a stream breaks, checks the final SHA-256 the server sends, and
// verifies the blob (checksums, format version, model and tokenizer fingerprints) before
// handing it out. Unreachable or id-less replicas are skipped in fail-over order. Stat() asks
// whether a tenant may read a memory (StatMemory as that tenant). Both forward the caller's
// "authorization" metadata, so the compressor applies the caller's tenant, never the decoder's.
// Thread-safety: thread-safe (gRPC stubs are).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/blob/blob_cache.h"
#include "common/blob/memory_blob.h"
#include "common/service/replica_ring.h"
#include "common/service/tls_credentials.h"
#include "ctxmem/v1/compressor.grpc.pb.h"

namespace ctxmem::service {

struct BlobFetcherOptions {
  std::vector<std::string> addresses;           // compressor replicas, "host:port"; at least one
  ClientTlsOptions tls;                         // channel security for all of them
  blob::BlobExpectations expect;                // the decoder's model and tokenizer fingerprints
  uint64_t max_blob_bytes = uint64_t{8} << 30;  // a larger blob: ResourceExhausted
  uint32_t chunk_bytes = 0;  // GetMemory max_chunk_bytes (0 = the server's 1 MiB)
  int max_resumes = 3;       // per replica: resumptions after a stream broke having made progress
  std::chrono::milliseconds fetch_timeout{300000};  // deadline of one GetMemory stream
  std::chrono::milliseconds stat_timeout{10000};    // deadline of one StatMemory call
};

// What Fetch() did besides returning the blob.
struct FetchStats {
  std::string replica;          // address the blob came from
  uint64_t bytes_received = 0;  // over the wire, resumed pieces included
  int n_resumes = 0;            // broken streams resumed
  int n_replicas_tried = 0;
  double seconds = 0;
};

class BlobFetcher {
 public:
  // InvalidArgument for a bad address list (ReplicaRing::Create); TLS file errors as
  // MakeClientChannel. Channels connect lazily.
  static absl::StatusOr<std::unique_ptr<BlobFetcher>> Create(const BlobFetcherOptions& options);

  // The verified blob `memory_id`, read as the tenant of `authorization` (the value of the
  // caller's "authorization" header; "" = none). Tries the replicas in ring order; a replica
  // answering UNAVAILABLE, DEADLINE_EXCEEDED, NOT_FOUND or DATA_LOSS is skipped. Errors:
  // InvalidArgument for a malformed id; FailedPrecondition naming the mismatch when the blob
  // was made for another model, tokenizer or format version; DataLoss when the assembled bytes
  // fail the server's SHA-256 or the blob's own checksums (or the server quarantined it);
  // NotFound when no replica has it for this tenant; Unavailable when a replica that might
  // hold it could not be reached; Unauthenticated / PermissionDenied as the compressor says.
  // `stats` (optional) is filled in on success and failure.
  absl::StatusOr<blob::CachedBlob> Fetch(const std::string& memory_id,
                                         const std::string& authorization,
                                         FetchStats* stats = nullptr) const;

  // StatMemory as the tenant of `authorization`, replicas in ring order: the first replica
  // that has it answers. Errors as Fetch (NotFound when no replica has it for this tenant).
  absl::StatusOr<v1::MemoryInfo> Stat(const std::string& memory_id,
                                      const std::string& authorization) const;

  const ReplicaRing& ring() const { return ring_; }

 private:
  BlobFetcher(BlobFetcherOptions options, ReplicaRing ring,
              std::vector<std::unique_ptr<v1::Compressor::Stub>> stubs)
      : options_(std::move(options)), ring_(std::move(ring)), stubs_(std::move(stubs)) {}
  // One replica: the whole blob's bytes, resuming broken streams; checks the server's sha256.
  absl::StatusOr<std::string> Download(int replica, const std::string& memory_id,
                                       const std::string& authorization, FetchStats* stats) const;

  // Constant after construction.
  const BlobFetcherOptions options_;
  const ReplicaRing ring_;
  const std::vector<std::unique_ptr<v1::Compressor::Stub>> stubs_;  // one per address
};

}  // namespace ctxmem::service
