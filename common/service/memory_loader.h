#pragma once
// MemoryLoader: memory ids -> the model past a request reads (DESIGN.md data flow, decoder
// side). For each id: the blob from the BlobCache (fetched through the BlobFetcher with the
// caller's authorization when missing), an ownership check with the compressor (StatMemory as
// the caller) the first time a tenant reads a blob the cache got for someone else, then
// DecodeMemory (or, with a shared S3 store, the blob and the ownership check from the bucket,
// as the tenant); the memories are concatenated in order and placed as a KvCache. Concurrent
// requests on the same memories (after each passed its own checks) share one decoded past:
// it is kept while a request still holds it and decoded again after the last one let go, so
// a memory read by many requests at once exists once in RAM. Nothing writes into a past's
// tensors (forwards build new ones; the batched decoder only reads them), so sharing is safe.
// Thread-safety: thread-safe (the cache, fetcher and model are; the shared pasts are guarded).

#include <absl/base/thread_annotations.h>
#include <absl/synchronization/mutex.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/blob/blob_cache.h"
#include "common/blob/blob_store.h"
#include "common/model/kv_cache.h"
#include "common/model/model.h"
#include "common/service/blob_fetcher.h"
#include "common/service/decoder_metrics.h"

namespace ctxmem::service {

struct LoadedPast {
  model::KvCache past;         // batch 1, RoPE applied; empty without memories; read only
                               // (its tensors may be shared with concurrent requests)
  int64_t memory_entries = 0;  // entries per kv head over all memories
  double fetch_seconds = 0;    // getting blobs (and ownership checks); 0 when all were cached
  double load_seconds = 0;     // blob -> Memory -> concatenation -> KvCache
  bool cache_hit = false;      // there were memories and every blob came from the cache
};

class MemoryLoader {
 public:
  // All borrowed and must outlive the loader; `metrics` may be null. With a `store` (the shared
  // S3 bucket), blobs are read from it directly, as the tenant (its key prefix), and
  // ownership checks are HEADs there; the fetcher (may then be null) is not used.
  MemoryLoader(blob::BlobCache* cache, const BlobFetcher* fetcher, const model::Model* model,
               DecoderMetrics* metrics, blob::BlobStore* store = nullptr)
      : cache_(cache), fetcher_(fetcher), model_(model), metrics_(metrics), store_(store) {}

  // The past of `memory_ids` (may be empty) for `tenant`, whose request carried the
  // "authorization" value `authorization` ("" without auth). NotFound when the tenant may not
  // read a memory (never saying whether it exists); fetch errors as BlobFetcher::Fetch
  // (FailedPrecondition for another model, DataLoss, Unavailable); DataLoss when a verified
  // blob does not decode (it is dropped from the cache); InvalidArgument when the memories do
  // not fit together (ConcatMemories).
  absl::StatusOr<LoadedPast> Load(const std::vector<std::string>& memory_ids,
                                  const std::string& tenant,
                                  const std::string& authorization) const;

 private:
  blob::BlobCache* cache_;
  const BlobFetcher* fetcher_;
  const model::Model* model_;
  DecoderMetrics* metrics_;
  blob::BlobStore* store_;
  struct SharedPast {
    model::KvCache past;
    int64_t memory_entries = 0;
  };
  // Decoded pasts by their memory ids joined with ','; an entry whose tensors only this map
  // holds any more is dropped by the next Load.
  mutable absl::Mutex pasts_mu_;
  mutable std::map<std::string, SharedPast> pasts_ ABSL_GUARDED_BY(pasts_mu_);
  // One blob from the store, checked against the cache's expectations (model, tokenizer).
  absl::StatusOr<blob::CachedBlob> FetchFromStore(const std::string& id,
                                                  const std::string& tenant) const;
};

}  // namespace ctxmem::service
