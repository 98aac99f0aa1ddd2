#include "common/service/blob_fetcher.h"

#include <grpcpp/client_context.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/blob/blob_id.h"
#include "common/blob/sha256.h"
#include "common/service/grpc_status.h"
#include "common/status.h"

namespace ctxmem::service {
namespace {

using Clock = std::chrono::steady_clock;

// Replies after which the next replica is asked: this one is down, or does not have the blob
// (each replica keeps its own store), or has only a quarantined copy.
bool TryNextReplica(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded ||
         code == absl::StatusCode::kNotFound || code == absl::StatusCode::kDataLoss;
}

// After every replica has failed: DataLoss (a copy exists but is bad) over Unavailable (one
// that might hold it is down) over NotFound.
int Rank(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kDataLoss:
      return 3;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return 2;
    default:
      return 1;
  }
}

void PrepareContext(grpc::ClientContext* context, const std::string& authorization,
                    std::chrono::milliseconds timeout) {
  if (!authorization.empty()) context->AddMetadata("authorization", authorization);
  context->set_deadline(std::chrono::system_clock::now() + timeout);
}

absl::Status CheckId(const std::string& memory_id) {
  if (!blob::IsMemoryId(memory_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("memory_id '", memory_id.substr(0, 80), "' is not 64 lowercase hex digits"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<BlobFetcher>> BlobFetcher::Create(
    const BlobFetcherOptions& options) {
  CTXMEM_ASSIGN_OR_RETURN(ReplicaRing ring, ReplicaRing::Create(options.addresses));
  std::vector<std::unique_ptr<v1::Compressor::Stub>> stubs;
  for (const std::string& address : options.addresses) {
    // A chunk is at most 1 MiB of data; leave room for the envelope.
    CTXMEM_ASSIGN_OR_RETURN(std::shared_ptr<grpc::Channel> channel,
                            MakeClientChannel(address, options.tls, 4 << 20));
    stubs.push_back(v1::Compressor::NewStub(channel));
  }
  return std::unique_ptr<BlobFetcher>(new BlobFetcher(options, std::move(ring), std::move(stubs)));
}

absl::StatusOr<std::string> BlobFetcher::Download(int replica, const std::string& memory_id,
                                                  const std::string& authorization,
                                                  FetchStats* stats) const {
  const std::string& address = ring_.addresses()[replica];
  std::string bytes;
  uint64_t total = 0;  // 0 until the first chunk
  std::string sha256;  // from the last chunk
  for (int attempt = 0;; ++attempt) {
    grpc::ClientContext context;
    PrepareContext(&context, authorization, options_.fetch_timeout);
    v1::GetMemoryRequest request;
    request.set_memory_id(memory_id);
    request.set_offset(bytes.size());
    request.set_max_chunk_bytes(options_.chunk_bytes);
    const uint64_t start_size = bytes.size();
    std::unique_ptr<grpc::ClientReader<v1::BlobChunk>> reader =
        stubs_[replica]->GetMemory(&context, request);
    v1::BlobChunk chunk;
    absl::Status bad;  // a protocol violation by the server: stop reading
    while (bad.ok() && reader->Read(&chunk)) {
      if (chunk.offset() != bytes.size()) {
        bad = absl::DataLossError(
            absl::StrCat("chunk at offset ", chunk.offset(), ", expected ", bytes.size()));
      } else if (total == 0 && chunk.total_bytes() > options_.max_blob_bytes) {
        bad = absl::ResourceExhaustedError(absl::StrCat("blob is ", chunk.total_bytes(),
                                                        " bytes, over this decoder's limit of ",
                                                        options_.max_blob_bytes));
      } else if (total != 0 && chunk.total_bytes() != total) {
        bad = absl::DataLossError(absl::StrCat("blob size changed from ", total, " to ",
                                               chunk.total_bytes(), " bytes mid-download"));
      } else if (bytes.size() + chunk.data().size() > chunk.total_bytes()) {
        bad = absl::DataLossError(
            absl::StrCat("server sent more than the blob's ", chunk.total_bytes(), " bytes"));
      } else {
        if (total == 0) {
          total = chunk.total_bytes();
          bytes.reserve(total);
        }
        bytes.append(chunk.data());
        if (stats != nullptr) stats->bytes_received += chunk.data().size();
        if (!chunk.sha256().empty()) sha256 = chunk.sha256();
      }
    }
    if (!bad.ok()) {
      context.TryCancel();
      reader->Finish().IgnoreError();
      return WithContext(bad, absl::StrCat("compressor ", address, ": memory ", memory_id));
    }
    const grpc::Status finish = reader->Finish();
    if (finish.ok()) {
      if (total == 0 || bytes.size() != total || sha256.empty()) {
        return absl::DataLossError(absl::StrCat(
            "compressor ", address, ": memory ", memory_id, ": stream ended at byte ", bytes.size(),
            " of ", total, sha256.empty() ? " without the final checksum" : ""));
      }
      break;
    }
    // A stream that broke after making progress is resumed from where it stopped.
    const bool progressed = bytes.size() > start_size;
    const auto code = static_cast<absl::StatusCode>(finish.error_code());
    if (progressed && attempt < options_.max_resumes &&
        (code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kInternal ||
         code == absl::StatusCode::kAborted || code == absl::StatusCode::kDeadlineExceeded)) {
      if (stats != nullptr) ++stats->n_resumes;
      continue;
    }
    return WithContext(FromGrpcStatus(finish), absl::StrCat("compressor ", address));
  }
  CTXMEM_ASSIGN_OR_RETURN(std::string computed, blob::Sha256Hex(bytes));
  if (computed != sha256) {
    return absl::DataLossError(absl::StrCat("compressor ", address, ": memory ", memory_id,
                                            " failed its checksum after download: server says ",
                                            sha256, ", received bytes hash to ", computed));
  }
  return bytes;
}

absl::StatusOr<blob::CachedBlob> BlobFetcher::Fetch(const std::string& memory_id,
                                                    const std::string& authorization,
                                                    FetchStats* stats) const {
  CTXMEM_RETURN_IF_ERROR(CheckId(memory_id));
  FetchStats local;
  if (stats == nullptr) stats = &local;
  const Clock::time_point start = Clock::now();
  absl::Status worst;
  for (int replica : ring_.Order(memory_id)) {
    ++stats->n_replicas_tried;
    absl::StatusOr<std::string> bytes = Download(replica, memory_id, authorization, stats);
    absl::Status status = bytes.status();
    if (bytes.ok()) {
      absl::StatusOr<blob::BlobInfo> info = blob::VerifyBlob(*bytes, options_.expect);
      if (info.ok()) {
        stats->replica = ring_.addresses()[replica];
        stats->seconds = std::chrono::duration<double>(Clock::now() - start).count();
        blob::CachedBlob out;
        out.memory_id = memory_id;
        out.bytes = *std::move(bytes);
        out.info = *std::move(info);
        return out;
      }
      status = WithContext(info.status(), absl::StrCat("memory ", memory_id, " from compressor ",
                                                       ring_.addresses()[replica]));
      // A blob for another model is the same on every replica: say so now.
      if (absl::IsFailedPrecondition(status)) return status;
    }
    if (!TryNextReplica(status.code())) return status;
    if (worst.ok() || Rank(status.code()) > Rank(worst.code())) worst = status;
  }
  stats->seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (absl::IsNotFound(worst)) {
    return absl::NotFoundError(absl::StrCat("memory ", memory_id, " not found"));
  }
  return worst;
}

absl::StatusOr<v1::MemoryInfo> BlobFetcher::Stat(const std::string& memory_id,
                                                 const std::string& authorization) const {
  CTXMEM_RETURN_IF_ERROR(CheckId(memory_id));
  absl::Status worst;
  for (int replica : ring_.Order(memory_id)) {
    grpc::ClientContext context;
    PrepareContext(&context, authorization, options_.stat_timeout);
    v1::StatMemoryRequest request;
    request.set_memory_id(memory_id);
    v1::MemoryInfo info;
    const grpc::Status s = stubs_[replica]->StatMemory(&context, request, &info);
    if (s.ok()) return info;
    absl::Status status =
        WithContext(FromGrpcStatus(s), absl::StrCat("compressor ", ring_.addresses()[replica]));
    if (!TryNextReplica(status.code())) return status;
    if (worst.ok() || Rank(status.code()) > Rank(worst.code())) worst = status;
  }
  if (absl::IsNotFound(worst)) {
    return absl::NotFoundError(absl::StrCat("memory ", memory_id, " not found"));
  }
  return worst;
}

}  // namespace ctxmem::service
