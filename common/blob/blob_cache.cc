#include "common/blob/blob_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/blob/atomic_file.h"
#include "common/blob/blob_id.h"
#include "common/status.h"

// Invariants (all under mu_):
//  - ram_ and ram_lru_ hold the same ids; ram_bytes_ is the sum of their blobs' bytes.size()
//    and stays <= ram_max_bytes (a blob larger than the budget is never held).
//  - disk_ and disk_lru_ hold the same ids; disk_bytes_ is the sum of their n_bytes and stays
//    <= disk_max_bytes. An id is in disk_ from the moment its write is reserved; only the
//    leader of that id's flight writes or reads the file then, so nobody sees it half-written
//    (and the write is atomic anyway).
//  - flights_ holds the ids being loaded or fetched; a Flight is removed when done, and its
//    result stays readable by the waiters that hold it.
//  - tenants_ only has ids that are in ram_ or disk_ (ForgetIfGone after every removal).

namespace ctxmem::blob {
namespace {

constexpr absl::string_view kBlobSuffix = ".blob";
using Clock = std::chrono::steady_clock;

absl::StatusOr<std::string> ReadWholeFile(const std::string& path, uint64_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    return absl::InternalError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0 || static_cast<uint64_t>(size) > max_bytes) {
    return absl::DataLossError(
        absl::StrCat(path, ": size ", size, " outside [0, ", max_bytes, "]"));
  }
  in.seekg(0, std::ios::beg);
  std::string bytes(static_cast<size_t>(size), '\0');
  in.read(bytes.data(), size);
  if (in.gcount() != size) return absl::DataLossError(absl::StrCat(path, ": short read"));
  return bytes;
}

}  // namespace

struct BlobCache::Flight {
  std::string tenant;  // whose fetch this is
  bool done = false;
  absl::Status status;
  std::shared_ptr<const CachedBlob> blob;
  CacheSource source = CacheSource::kFetch;
  double seconds = 0;
  bool dropped_corrupt = false;
};

absl::string_view CacheSourceName(CacheSource source) {
  switch (source) {
    case CacheSource::kRam:
      return "ram";
    case CacheSource::kDisk:
      return "disk";
    case CacheSource::kFetch:
      return "fetch";
  }
  return "unknown";
}

absl::StatusOr<std::unique_ptr<BlobCache>> BlobCache::Open(const BlobCacheOptions& options) {
  std::unique_ptr<BlobCache> cache(new BlobCache(options));
  if (options.dir.empty()) return cache;
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create cache directory ", options.dir, ": ", ec.message()));
  }
  struct Found {
    std::string id;
    uint64_t n_bytes;
    std::filesystem::file_time_type mtime;
  };
  std::vector<Found> found;
  for (std::filesystem::directory_iterator it(options.dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (IsAtomicTempName(name)) {  // left by a crash mid-write
      std::filesystem::remove(it->path(), ec);
      ec.clear();
      continue;
    }
    if (!absl::EndsWith(name, kBlobSuffix)) continue;
    const std::string id = name.substr(0, name.size() - kBlobSuffix.size());
    std::error_code fec;
    if (!IsMemoryId(id) || !it->is_regular_file(fec)) continue;
    const uint64_t n_bytes = it->file_size(fec);
    const auto mtime = it->last_write_time(fec);
    if (fec) continue;
    found.push_back({id, n_bytes, mtime});
  }
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot list cache directory ", options.dir, ": ", ec.message()));
  }
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.mtime < b.mtime; });
  absl::MutexLock lock(&cache->mu_);
  for (const Found& f : found) {  // oldest first, so the newest ends at the front
    cache->disk_lru_.push_front(f.id);
    cache->disk_[f.id] = DiskEntry{f.n_bytes, cache->disk_lru_.begin()};
    cache->disk_bytes_ += f.n_bytes;
  }
  while (cache->disk_bytes_ > options.disk_max_bytes && !cache->disk_lru_.empty()) {
    cache->EraseDiskLocked(cache->disk_lru_.back());
  }
  return cache;
}

std::string BlobCache::PathOf(const std::string& memory_id) const {
  return absl::StrCat(options_.dir, "/", memory_id, kBlobSuffix);
}

absl::StatusOr<BlobCacheLookup> BlobCache::Get(const std::string& memory_id,
                                               const std::string& tenant,
                                               const BlobFetchFn& fetch) {
  if (!IsMemoryId(memory_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("memory_id '", memory_id.substr(0, 80), "' is not 64 lowercase hex digits"));
  }
  std::shared_ptr<Flight> flight;
  {
    absl::MutexLock lock(&mu_);
    while (true) {
      if (auto it = ram_.find(memory_id); it != ram_.end()) {
        ram_lru_.splice(ram_lru_.begin(), ram_lru_, it->second.lru);
        BlobCacheLookup hit;
        hit.blob = it->second.blob;
        hit.source = CacheSource::kRam;
        auto t = tenants_.find(memory_id);
        hit.verified_for_tenant = t != tenants_.end() && t->second.contains(tenant);
        return hit;
      }
      auto fit = flights_.find(memory_id);
      if (fit == flights_.end()) break;
      std::shared_ptr<Flight> other = fit->second;
      mu_.Await(absl::Condition(&other->done));
      if (other->status.ok()) {
        BlobCacheLookup shared;
        shared.blob = other->blob;
        shared.source = other->source;
        shared.shared_fetch = true;
        shared.fetch_seconds = other->seconds;
        auto t = tenants_.find(memory_id);
        shared.verified_for_tenant = t != tenants_.end() && t->second.contains(tenant);
        return shared;
      }
      if (other->tenant == tenant) return other->status;
      // Another tenant's fetch failed: that says nothing about ours; look again.
    }
    flight = std::make_shared<Flight>();
    flight->tenant = tenant;
    flights_[memory_id] = flight;
  }

  // This call leads the flight: disk first, then the fetch. No lock held during I/O.
  const Clock::time_point start = Clock::now();
  absl::Status status;
  std::shared_ptr<const CachedBlob> blob;
  CacheSource source = CacheSource::kDisk;
  bool dropped_corrupt = false;
  bool on_disk = false;
  {
    absl::MutexLock lock(&mu_);
    on_disk = disk_.contains(memory_id);
  }
  if (on_disk) {
    absl::StatusOr<std::shared_ptr<const CachedBlob>> loaded = LoadFromDisk(memory_id);
    if (loaded.ok()) {
      blob = *std::move(loaded);
    } else if (!absl::IsNotFound(loaded.status())) {
      dropped_corrupt = true;
    }
  }
  if (blob == nullptr) {
    source = CacheSource::kFetch;
    absl::StatusOr<CachedBlob> fetched = fetch();
    if (!fetched.ok()) {
      status = fetched.status();
    } else if (!fetched->info.metadata.memory_id.empty() &&
               fetched->info.metadata.memory_id != memory_id) {
      status = absl::DataLossError(absl::StrCat("blob fetched for memory ", memory_id,
                                                " says it is memory ",
                                                fetched->info.metadata.memory_id));
    } else {
      fetched->memory_id = memory_id;
      auto shared = std::make_shared<const CachedBlob>(*std::move(fetched));
      StoreOnDisk(*shared);
      blob = std::move(shared);
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  absl::MutexLock lock(&mu_);
  if (status.ok()) {
    InsertRam(blob);
    if (source == CacheSource::kFetch && (ram_.contains(memory_id) || disk_.contains(memory_id))) {
      tenants_[memory_id].insert(tenant);
    }
  }
  flight->status = status;
  flight->blob = blob;
  flight->source = source;
  flight->seconds = source == CacheSource::kFetch ? seconds : 0;
  flight->dropped_corrupt = dropped_corrupt;
  flight->done = true;
  flights_.erase(memory_id);
  if (!status.ok()) return status;
  BlobCacheLookup out;
  out.blob = std::move(blob);
  out.source = source;
  out.fetch_seconds = flight->seconds;
  out.dropped_corrupt = dropped_corrupt;
  auto t = tenants_.find(memory_id);
  // A fetch with the tenant's own credentials proves access even when the blob fits no tier.
  out.verified_for_tenant =
      source == CacheSource::kFetch || (t != tenants_.end() && t->second.contains(tenant));
  return out;
}

absl::StatusOr<std::shared_ptr<const CachedBlob>> BlobCache::LoadFromDisk(
    const std::string& memory_id) {
  const std::string path = PathOf(memory_id);
  absl::StatusOr<std::string> bytes = ReadWholeFile(path, options_.disk_max_bytes);
  absl::Status status = bytes.status();
  std::shared_ptr<CachedBlob> blob;
  if (bytes.ok()) {
    absl::StatusOr<BlobInfo> info = VerifyBlob(*bytes, options_.expect);
    if (info.ok() && !info->metadata.memory_id.empty() && info->metadata.memory_id != memory_id) {
      info = absl::DataLossError("cached file holds another memory");
    }
    status = info.status();
    if (info.ok()) {
      blob = std::make_shared<CachedBlob>();
      blob->memory_id = memory_id;
      blob->bytes = *std::move(bytes);
      blob->info = *std::move(info);
    }
  }
  absl::MutexLock lock(&mu_);
  if (!status.ok()) {
    // Missing or bad: drop the entry (and the file, if any) so it is fetched again.
    EraseDiskLocked(memory_id);
    ForgetIfGone(memory_id);
    return status;
  }
  if (auto it = disk_.find(memory_id); it != disk_.end()) {
    disk_lru_.splice(disk_lru_.begin(), disk_lru_, it->second.lru);
  }
  // Persist the recency for the next start (best effort).
  utimensat(AT_FDCWD, path.c_str(), nullptr, 0);
  return std::shared_ptr<const CachedBlob>(std::move(blob));
}

void BlobCache::StoreOnDisk(const CachedBlob& blob) {
  if (options_.dir.empty()) return;
  const uint64_t n = blob.bytes.size();
  {
    absl::MutexLock lock(&mu_);
    if (n > options_.disk_max_bytes || disk_.contains(blob.memory_id)) return;
    while (disk_bytes_ + n > options_.disk_max_bytes && !disk_lru_.empty()) {
      EraseDiskLocked(disk_lru_.back());
    }
    disk_lru_.push_front(blob.memory_id);
    disk_[blob.memory_id] = DiskEntry{n, disk_lru_.begin()};
    disk_bytes_ += n;
  }
  if (!WriteFileAtomically(PathOf(blob.memory_id), blob.bytes).ok()) {
    absl::MutexLock lock(&mu_);
    EraseDiskLocked(blob.memory_id);
  }
}

void BlobCache::InsertRam(std::shared_ptr<const CachedBlob> blob) {
  const uint64_t n = blob->bytes.size();
  if (n > options_.ram_max_bytes || ram_.contains(blob->memory_id)) return;
  while (ram_bytes_ + n > options_.ram_max_bytes && !ram_lru_.empty()) {
    const std::string victim = ram_lru_.back();
    ram_lru_.pop_back();
    ram_bytes_ -= ram_.at(victim).blob->bytes.size();
    ram_.erase(victim);
    ForgetIfGone(victim);
  }
  ram_lru_.push_front(blob->memory_id);
  const std::string id = blob->memory_id;
  ram_[id] = RamEntry{std::move(blob), ram_lru_.begin()};
  ram_bytes_ += n;
}

void BlobCache::EraseDiskLocked(const std::string& memory_id) {
  auto it = disk_.find(memory_id);
  if (it == disk_.end()) return;
  const std::string id = memory_id;  // memory_id may alias the list node we erase
  disk_bytes_ -= it->second.n_bytes;
  disk_lru_.erase(it->second.lru);
  disk_.erase(it);
  unlink(PathOf(id).c_str());
  ForgetIfGone(id);
}

void BlobCache::ForgetIfGone(const std::string& memory_id) {
  if (memory_id.empty()) return;
  if (!ram_.contains(memory_id) && !disk_.contains(memory_id)) tenants_.erase(memory_id);
}

void BlobCache::MarkVerified(const std::string& memory_id, const std::string& tenant) {
  absl::MutexLock lock(&mu_);
  if (ram_.contains(memory_id) || disk_.contains(memory_id)) tenants_[memory_id].insert(tenant);
}

void BlobCache::Erase(const std::string& memory_id) {
  absl::MutexLock lock(&mu_);
  if (auto it = ram_.find(memory_id); it != ram_.end()) {
    ram_bytes_ -= it->second.blob->bytes.size();
    ram_lru_.erase(it->second.lru);
    ram_.erase(it);
  }
  EraseDiskLocked(memory_id);
  ForgetIfGone(memory_id);
}

uint64_t BlobCache::ram_bytes() const {
  absl::MutexLock lock(&mu_);
  return ram_bytes_;
}
uint64_t BlobCache::disk_bytes() const {
  absl::MutexLock lock(&mu_);
  return disk_bytes_;
}
int64_t BlobCache::ram_entries() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(ram_.size());
}
int64_t BlobCache::disk_entries() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(disk_.size());
}

}  // namespace ctxmem::blob
