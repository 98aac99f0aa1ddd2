#include "compressor_svc/get_memory_reactor.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>

#include <algorithm>

#include "common/blob/blob_id.h"
#include "common/blob/sha256.h"
#include "common/service/grpc_status.h"
#include "common/service/raw_message.h"
#include "common/service/service_log.h"
#include "common/status.h"
#include "compressor_svc/compressor_service.h"

namespace ctxmem::compressor_svc {

GetMemoryReactor::GetMemoryReactor(CompressorService* service, grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer& raw_request)
    : service_(service) {
  absl::Status status = Open(context, raw_request);
  if (!status.ok()) {
    End(status);
    return;
  }
  NextWrite();
}

absl::Status GetMemoryReactor::Open(grpc::CallbackServerContext* context,
                                    const grpc::ByteBuffer& raw_request) {
  CTXMEM_ASSIGN_OR_RETURN(const std::string tenant, service_->auth().Authenticate(*context));
  CTXMEM_ASSIGN_OR_RETURN(const ctxmem::v1::GetMemoryRequest request,
                          service::ParseRawRequest<ctxmem::v1::GetMemoryRequest>(raw_request));
  if (!blob::IsMemoryId(request.memory_id())) {
    return absl::InvalidArgumentError(absl::StrCat("memory_id '", request.memory_id().substr(0, 80),
                                                   "' is not 64 lowercase hex characters"));
  }
  CTXMEM_ASSIGN_OR_RETURN(lease_, service_->limiter().Acquire(tenant));
  absl::StatusOr<blob::BlobHandle> handle = service_->env().store->Get(request.memory_id(), tenant);
  if (!handle.ok()) {
    if (absl::IsDataLoss(handle.status())) {
      service::LogError(
          absl::StrFormat("get_memory memory_id=%s failed verification and was quarantined: %s",
                          request.memory_id(), handle.status().ToString()));
      service_->RefreshStoreGauges();
    }
    return handle.status();
  }
  handle_ = *std::move(handle);
  const uint64_t size = handle_.bytes().size();
  if (request.offset() > size) {
    return absl::OutOfRangeError(absl::StrCat("offset ", request.offset(),
                                              " is past the end of the blob (", size, " bytes)"));
  }
  offset_ = request.offset();
  if (request.max_chunk_bytes() != 0) {
    chunk_bytes_ =
        std::clamp<uint64_t>(request.max_chunk_bytes(), kMinBlobChunkBytes, kMaxBlobChunkBytes);
  }
  CTXMEM_ASSIGN_OR_RETURN(sha256_, blob::Sha256Hex(handle_.bytes()));
  return absl::OkStatus();
}

void GetMemoryReactor::NextWrite() {
  const absl::string_view bytes = handle_.bytes();
  if (sent_last_) {
    End(absl::OkStatus());
    return;
  }
  const uint64_t n = std::min<uint64_t>(chunk_bytes_, bytes.size() - offset_);
  chunk_.Clear();
  chunk_.set_offset(offset_);
  chunk_.set_data(bytes.data() + offset_, n);
  chunk_.set_total_bytes(bytes.size());
  offset_ += n;
  if (offset_ == bytes.size()) {
    chunk_.set_sha256(sha256_);
    sent_last_ = true;
  }
  StartWrite(&chunk_);
}

void GetMemoryReactor::OnWriteDone(bool ok) {
  if (!ok) {
    End(absl::CancelledError("the client went away during the download"));
    return;
  }
  NextWrite();
}

void GetMemoryReactor::End(const absl::Status& status) {
  const grpc::Status out = service::ToGrpcStatus(status);
  service_->CountRequest("GetMemory", out.error_code());
  Finish(out);
}

}  // namespace ctxmem::compressor_svc
