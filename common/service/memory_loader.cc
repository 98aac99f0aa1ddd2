#include "common/service/memory_loader.h"

#include <c10/core/InferenceMode.h>

#include <chrono>
#include <iterator>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/compress/memory_codec.h"
#include "common/compress/memory_concat.h"
#include "common/status.h"

namespace ctxmem::service {
namespace {
using Clock = std::chrono::steady_clock;
double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
}  // namespace

absl::StatusOr<blob::CachedBlob> MemoryLoader::FetchFromStore(const std::string& id,
                                                              const std::string& tenant) const {
  const Clock::time_point start = Clock::now();
  CTXMEM_ASSIGN_OR_RETURN(const blob::BlobHandle handle, store_->Get(id, tenant));
  CTXMEM_RETURN_IF_ERROR(blob::CheckExpectations(handle.info().metadata, cache_->options().expect));
  blob::CachedBlob out{id, std::string(handle.bytes()), handle.info()};
  if (metrics_ != nullptr) metrics_->ObserveFetch(out.bytes.size(), SecondsSince(start));
  return out;
}

absl::StatusOr<LoadedPast> MemoryLoader::Load(const std::vector<std::string>& memory_ids,
                                              const std::string& tenant,
                                              const std::string& authorization) const {
  LoadedPast out;
  bool any_remote = false;  // a fetch or an ownership check went to a compressor
  bool any_fetch = false;
  std::vector<std::shared_ptr<const blob::CachedBlob>> blobs;
  const Clock::time_point t_fetch = Clock::now();
  for (const std::string& id : memory_ids) {
    const blob::BlobFetchFn fetch = [&]() -> absl::StatusOr<blob::CachedBlob> {
      if (store_ != nullptr) return FetchFromStore(id, tenant);
      FetchStats stats;
      absl::StatusOr<blob::CachedBlob> fetched = fetcher_->Fetch(id, authorization, &stats);
      if (metrics_ != nullptr && stats.bytes_received > 0) {
        metrics_->ObserveFetch(stats.bytes_received, stats.seconds);
      }
      return fetched;
    };
    CTXMEM_ASSIGN_OR_RETURN(blob::BlobCacheLookup lookup, cache_->Get(id, tenant, fetch));
    if (metrics_ != nullptr) metrics_->CountLookup(lookup.source);
    if (lookup.source == blob::CacheSource::kFetch) any_fetch = any_remote = true;
    if (!lookup.verified_for_tenant) {
      any_remote = true;
      // The cache has it from another tenant's request (or from before a restart): ask the
      // compressor (or the bucket) whether this tenant may read it. NotFound stays NotFound.
      if (store_ != nullptr) {
        CTXMEM_RETURN_IF_ERROR(store_->Stat(id, tenant).status());
      } else {
        absl::StatusOr<v1::MemoryInfo> info = fetcher_->Stat(id, authorization);
        if (!info.ok()) return info.status();
      }
      cache_->MarkVerified(id, tenant);
    }
    blobs.push_back(std::move(lookup.blob));
  }
  if (metrics_ != nullptr) metrics_->SetCacheBytes(cache_->ram_bytes(), cache_->disk_bytes());
  out.cache_hit = !memory_ids.empty() && !any_fetch;
  out.fetch_seconds = any_remote ? SecondsSince(t_fetch) : 0;

  const Clock::time_point t_load = Clock::now();
  const std::string key = absl::StrJoin(memory_ids, ",");
  {
    absl::MutexLock lock(&pasts_mu_);
    for (auto it = pasts_.begin(); it != pasts_.end();) {
      const bool unused = it->second.past.k.empty() || it->second.past.k[0].use_count() == 1;
      it = it->first != key && unused ? pasts_.erase(it) : std::next(it);
    }
    if (auto it = pasts_.find(key); it != pasts_.end() && !memory_ids.empty()) {
      out.past = it->second.past;  // handles: the same tensors
      out.memory_entries = it->second.memory_entries;
      out.load_seconds = SecondsSince(t_load);
      return out;
    }
  }
  std::vector<compress::Memory> memories;
  memories.reserve(blobs.size());
  for (const auto& b : blobs) {
    absl::StatusOr<compress::Memory> memory =
        compress::DecodeMemory(b->bytes, b->info.metadata, model_->transformer());
    if (!memory.ok()) {
      if (absl::IsDataLoss(memory.status())) cache_->Erase(b->memory_id);
      return WithContext(memory.status(), absl::StrCat("memory ", b->memory_id));
    }
    memories.push_back(*std::move(memory));
  }
  std::vector<const compress::Memory*> pointers;
  for (const auto& m : memories) pointers.push_back(&m);
  CTXMEM_ASSIGN_OR_RETURN(compress::Memory joined, compress::ConcatMemories(pointers));
  out.memory_entries = joined.len();
  CTXMEM_ASSIGN_OR_RETURN(out.past, compress::ToKvCache(joined, model_->transformer()));
  if (!memory_ids.empty() && !out.past.empty()) {
    absl::MutexLock lock(&pasts_mu_);
    pasts_[key] = SharedPast{out.past, out.memory_entries};
  }
  out.load_seconds = SecondsSince(t_load);
  return out;
}

}  // namespace ctxmem::service
