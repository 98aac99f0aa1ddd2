#include "compressor_svc/compressor_service.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>

#include <algorithm>
#include <optional>

#include "common/blob/blob_id.h"
#include "common/blob/file_blob_store.h"
#include "common/service/compressor_metrics.h"
#include "common/service/grpc_status.h"
#include "common/service/memory_info_proto.h"
#include "common/service/metrics_endpoint.h"
#include "common/service/raw_message.h"
#include "common/service/service_log.h"
#include "common/status.h"
#include "compressor_svc/compress_reactor.h"
#include "compressor_svc/get_memory_reactor.h"

namespace ctxmem::compressor_svc {
namespace {

constexpr int64_t kDefaultPageSize = 100;

absl::Status CheckMemoryId(const std::string& id) {
  if (blob::IsMemoryId(id)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("memory_id '", id.substr(0, 80), "' is not 64 lowercase hex characters"));
}

service::WorkQueueOptions QueueOptions(const char* name, int64_t n_workers, int64_t max_pending) {
  service::WorkQueueOptions options;
  options.name = name;
  options.n_workers = static_cast<int>(std::max<int64_t>(1, n_workers));
  options.max_pending = max_pending;
  return options;
}

}  // namespace

CompressorService::CompressorService(service::CompressJobEnv env, const service::TokenAuth* auth,
                                     service::MetricsEndpoint* endpoint,
                                     service::CompressorMetrics* metrics,
                                     const CompressorServiceOptions& options)
    : env_(std::move(env)),
      auth_(auth),
      endpoint_(endpoint),
      metrics_(metrics),
      options_(options),
      gate_("compress", options.n_workers, options.queue_depth,
            [metrics](service::AdmissionCounts counts) {
              if (metrics == nullptr) return;
              metrics->SetQueueDepth(counts.waiting);
              metrics->SetJobsRunning(counts.running);
            }),
      limiter_(options.max_streams_per_tenant),
      // The gate admits at most limit() jobs, and each queues at most once per queue, so
      // neither queue ever refuses an admitted job.
      prepare_queue_(QueueOptions("prepare", options.n_prepare_workers, gate_.limit())),
      compute_queue_(QueueOptions("compress", options.n_workers, gate_.limit())) {
  RefreshStoreGauges();
}

CompressorService::~CompressorService() { Shutdown(); }

void CompressorService::Shutdown() {
  prepare_queue_.Shutdown();
  compute_queue_.Shutdown();
}

void CompressorService::CountRequest(absl::string_view method, grpc::StatusCode code) {
  if (endpoint_ != nullptr) endpoint_->CountRequest(method, code);
}

void CompressorService::RefreshStoreGauges() {
  if (metrics_ == nullptr) return;
  if (const std::optional<blob::BlobStoreUsage> usage = env_.store->usage()) {
    metrics_->SetStore(usage->total_bytes, usage->n_blobs, usage->max_bytes);
  }
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* CompressorService::Compress(
    grpc::CallbackServerContext* context) {
  return new CompressReactor(this, context);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* CompressorService::GetMemory(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  return new GetMemoryReactor(this, context, *request);
}

grpc::ServerUnaryReactor* CompressorService::StatMemory(grpc::CallbackServerContext* context,
                                                        const grpc::ByteBuffer* raw_request,
                                                        grpc::ByteBuffer* raw_response) {
  ctxmem::v1::MemoryInfo response_message;
  ctxmem::v1::MemoryInfo* response = &response_message;
  absl::Status status = [&]() -> absl::Status {
    CTXMEM_ASSIGN_OR_RETURN(const std::string tenant, auth_->Authenticate(*context));
    CTXMEM_ASSIGN_OR_RETURN(const auto parsed,
                            service::ParseRawRequest<ctxmem::v1::StatMemoryRequest>(*raw_request));
    const ctxmem::v1::StatMemoryRequest* request = &parsed;
    CTXMEM_RETURN_IF_ERROR(CheckMemoryId(request->memory_id()));
    CTXMEM_ASSIGN_OR_RETURN(blob::StoredBlobStat stat,
                            env_.store->Stat(request->memory_id(), tenant));
    CTXMEM_ASSIGN_OR_RETURN(blob::BlobMetadata metadata,
                            service::ReadBlobMetadataUnverified(*env_.store, stat.id, tenant));
    *response = service::MemoryInfoFromMetadata(metadata, stat.n_bytes);
    return absl::OkStatus();
  }();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const grpc::Status out = service::FinishRawUnary(reactor, status, *response, raw_response);
  CountRequest("StatMemory", out.error_code());
  return reactor;
}

grpc::ServerUnaryReactor* CompressorService::ListMemories(grpc::CallbackServerContext* context,
                                                          const grpc::ByteBuffer* raw_request,
                                                          grpc::ByteBuffer* raw_response) {
  ctxmem::v1::ListMemoriesResponse response_message;
  ctxmem::v1::ListMemoriesResponse* response = &response_message;
  absl::Status status = [&]() -> absl::Status {
    CTXMEM_ASSIGN_OR_RETURN(const std::string tenant, auth_->Authenticate(*context));
    CTXMEM_ASSIGN_OR_RETURN(
        const auto parsed, service::ParseRawRequest<ctxmem::v1::ListMemoriesRequest>(*raw_request));
    const ctxmem::v1::ListMemoriesRequest* request = &parsed;
    const int64_t page_size = request->page_size() <= 0 ? kDefaultPageSize : request->page_size();
    if (!request->page_token().empty())
      CTXMEM_RETURN_IF_ERROR(CheckMemoryId(request->page_token()));
    CTXMEM_ASSIGN_OR_RETURN(blob::BlobPage page,
                            env_.store->List(tenant, page_size, request->page_token()));
    for (const blob::StoredBlobStat& stat : page.blobs) {
      absl::StatusOr<blob::BlobMetadata> metadata =
          service::ReadBlobMetadataUnverified(*env_.store, stat.id, tenant);
      if (absl::IsNotFound(metadata.status())) continue;  // deleted meanwhile
      if (!metadata.ok()) {
        service::LogWarn(absl::StrFormat("list_memories memory_id=%s unreadable header: %s",
                                         stat.id, metadata.status().ToString()));
        ctxmem::v1::MemoryInfo* info = response->add_memories();
        info->set_memory_id(stat.id);
        info->set_blob_bytes(stat.n_bytes);
        continue;
      }
      *response->add_memories() = service::MemoryInfoFromMetadata(*metadata, stat.n_bytes);
    }
    response->set_next_page_token(page.next_page_token);
    return absl::OkStatus();
  }();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const grpc::Status out = service::FinishRawUnary(reactor, status, *response, raw_response);
  CountRequest("ListMemories", out.error_code());
  return reactor;
}

grpc::ServerUnaryReactor* CompressorService::DeleteMemory(grpc::CallbackServerContext* context,
                                                          const grpc::ByteBuffer* raw_request,
                                                          grpc::ByteBuffer* raw_response) {
  ctxmem::v1::DeleteMemoryResponse response_message;
  ctxmem::v1::DeleteMemoryResponse* response = &response_message;
  absl::Status status = [&]() -> absl::Status {
    CTXMEM_ASSIGN_OR_RETURN(const std::string tenant, auth_->Authenticate(*context));
    CTXMEM_ASSIGN_OR_RETURN(
        const auto parsed, service::ParseRawRequest<ctxmem::v1::DeleteMemoryRequest>(*raw_request));
    const ctxmem::v1::DeleteMemoryRequest* request = &parsed;
    CTXMEM_RETURN_IF_ERROR(CheckMemoryId(request->memory_id()));
    CTXMEM_RETURN_IF_ERROR(env_.store->Delete(request->memory_id(), tenant));
    service::LogInfo(
        absl::StrFormat("delete_memory tenant=%s memory_id=%s", tenant, request->memory_id()));
    return absl::OkStatus();
  }();
  RefreshStoreGauges();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const grpc::Status out = service::FinishRawUnary(reactor, status, *response, raw_response);
  CountRequest("DeleteMemory", out.error_code());
  return reactor;
}

}  // namespace ctxmem::compressor_svc
