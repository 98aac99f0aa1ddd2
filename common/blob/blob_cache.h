#pragma once
// BlobCache: the decoder's cache of verified memory blobs by memory_id, in two tiers: RAM
// (shared, immutable CachedBlobs, LRU by bytes) and a directory on disk (one file per blob,
// written atomically, LRU by bytes, kept across restarts and re-verified whenever it is read:
// a file that fails verification is deleted and fetched again). A missing blob is fetched by
// a caller-supplied function, and concurrent Gets of the same missing id share ONE fetch
// (single flight). Each entry remembers the tenants whose ownership of it is known, so the
// service can check ownership once per (memory, tenant) instead of once per request.
// Thread-safety: thread-safe.

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/blob/memory_blob.h"

namespace ctxmem::blob {

// A verified blob. Shared (rule 30) by the RAM tier and every request reading it; immutable.
struct CachedBlob {
  std::string memory_id;
  std::string bytes;  // the whole blob file, verified
  BlobInfo info;      // from VerifyBlob over `bytes`
};

// Where a Get found its blob.
enum class CacheSource {
  kRam,    // the RAM tier
  kDisk,   // the disk tier (read and re-verified)
  kFetch,  // a fetch, this call's own or one it shared
};
absl::string_view CacheSourceName(CacheSource source);  // "ram", "disk", "fetch"

struct BlobCacheOptions {
  std::string dir;  // disk tier directory (created if missing); "" = RAM only
  uint64_t ram_max_bytes = uint64_t{1} << 30;    // bytes of blobs held in RAM; 0 = none
  uint64_t disk_max_bytes = uint64_t{10} << 30;  // bytes of blob files on disk; 0 = none
  BlobExpectations expect;  // fingerprints every blob read back from disk must carry
};

struct BlobCacheLookup {
  std::shared_ptr<const CachedBlob> blob;  // never null on success
  CacheSource source = CacheSource::kRam;
  // The tenant's ownership is known: its own fetch got the blob, or MarkVerified was called.
  bool verified_for_tenant = false;
  bool shared_fetch = false;     // waited for a fetch another call had started
  double fetch_seconds = 0;      // wall time of the fetch this call ran or waited for
  bool dropped_corrupt = false;  // a disk copy failed verification and was deleted
};

// Gets the blob from its source (the compressor). Must return bytes already verified
// (VerifyBlob with the caller's expectations) in a CachedBlob. Runs on the Get caller's thread.
using BlobFetchFn = std::function<absl::StatusOr<CachedBlob>()>;

class BlobCache {
 public:
  // Opens (creating) the disk tier: sweeps temp files left by a crash, indexes "<id>.blob"
  // files by modification time (oldest = least recently used) and evicts down to the budget.
  // Files are not read here; each is verified when first used. Internal naming the directory
  // on I/O errors.
  static absl::StatusOr<std::unique_ptr<BlobCache>> Open(const BlobCacheOptions& options);
  BlobCache(const BlobCache&) = delete;
  BlobCache& operator=(const BlobCache&) = delete;

  // The blob `memory_id`: from RAM, else from disk (re-verified; on failure the file is
  // deleted), else from `fetch`, which only one of several concurrent callers for the same id
  // runs; the others wait and share its result. A fetched blob is stored in both tiers where
  // it fits, and `tenant` is marked verified for it. A failed fetch is returned to the waiters
  // of the same tenant; waiters of another tenant retry with their own fetch (one tenant's
  // NOT_FOUND says nothing about another's). InvalidArgument for a malformed id; DataLoss when
  // the fetched blob names another memory_id; fetch errors pass through.
  absl::StatusOr<BlobCacheLookup> Get(const std::string& memory_id, const std::string& tenant,
                                      const BlobFetchFn& fetch);

  // Records that `tenant` may read `memory_id` (checked by the caller). No-op when the blob is
  // in neither tier.
  void MarkVerified(const std::string& memory_id, const std::string& tenant);
  // Drops `memory_id` from both tiers (e.g. a blob that verified but does not decode).
  void Erase(const std::string& memory_id);

  uint64_t ram_bytes() const;
  uint64_t disk_bytes() const;
  int64_t ram_entries() const;
  int64_t disk_entries() const;
  const BlobCacheOptions& options() const { return options_; }

 private:
  struct Flight;
  struct RamEntry {
    std::shared_ptr<const CachedBlob> blob;
    std::list<std::string>::iterator lru;  // position in ram_lru_
  };
  struct DiskEntry {
    uint64_t n_bytes = 0;
    std::list<std::string>::iterator lru;  // position in disk_lru_
  };

  explicit BlobCache(BlobCacheOptions options) : options_(std::move(options)) {}
  std::string PathOf(const std::string& memory_id) const;
  // Reads and verifies the disk copy. NotFound when there is none; any other error means the
  // file was bad and has been deleted.
  absl::StatusOr<std::shared_ptr<const CachedBlob>> LoadFromDisk(const std::string& memory_id);
  // Writes a fetched blob to disk (evicting LRU files first). Failures only cost the disk copy.
  void StoreOnDisk(const CachedBlob& blob);
  void InsertRam(std::shared_ptr<const CachedBlob> blob) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseDiskLocked(const std::string& memory_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forgets the verified tenants of ids in neither tier.
  void ForgetIfGone(const std::string& memory_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const BlobCacheOptions options_;  // constant after construction

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, RamEntry> ram_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> ram_lru_ ABSL_GUARDED_BY(mu_);  // front = most recently used
  uint64_t ram_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, DiskEntry> disk_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> disk_lru_ ABSL_GUARDED_BY(mu_);  // front = most recently used
  uint64_t disk_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, std::shared_ptr<Flight>> flights_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> tenants_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ctxmem::blob
