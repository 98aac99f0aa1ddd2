#pragma once
// DecoderDeps: what the decoder's calls (GenerateCall, ScoreCall) work with. Shared by every
// front of decoder_svc (the gRPC Decoder service, the OpenAI-compatible HTTP front), so both
// run the same admission, limits, metrics and work.
// Thread-safety: a plain struct of borrowed pointers to thread-safe objects; constant once built.

#include "common/model/model.h"
#include "common/service/decoder_metrics.h"
#include "common/service/decoder_request.h"
#include "common/service/memory_loader.h"
#include "common/service/metrics_endpoint.h"
#include "common/service/tenant_stream_limiter.h"
#include "common/service/token_auth.h"
#include "common/service/work_queue.h"

namespace ctxmem::service {

class DecodeBatcher;

// Every pointer is borrowed and must outlive every call started with these deps (the servers
// are shut down and the queue drained first).
struct DecoderDeps {
  const model::Model* model = nullptr;
  MemoryLoader* loader = nullptr;
  WorkQueue* queue = nullptr;
  // Where Generate streams decode (batched with the other streams); null = each call
  // generates on its own worker (model::Generate).
  DecodeBatcher* batcher = nullptr;
  TenantStreamLimiter* limiter = nullptr;
  const TokenAuth* auth = nullptr;
  MetricsEndpoint* endpoint = nullptr;
  DecoderMetrics* metrics = nullptr;
  DecoderLimits limits;
  bool log_content = false;  // prompts and answers in the logs (off: never)
};

}  // namespace ctxmem::service
