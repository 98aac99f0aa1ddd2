#pragma once
// FileBlobStore: sealed memory blobs in a directory, keyed by id, each owned by one or more
// tenants, with a byte budget and LRU eviction of blobs nobody is reading. Blobs are verified
// (VerifyBlob) when stored and when opened; a corrupt one is quarantined, never served.
// Thread-safety: thread-safe; one FileBlobStore per directory (Open takes a lock file).
//
// Directory layout:
//   <dir>/LOCK                          flock()ed while a store has the directory open
//   <dir>/blobs/<id>.safetensors        sealed blobs (valid memory blobs, immutable)
//   <dir>/blobs/<id>.owners.json        {"owners": ["tenant", ...]}, written before the blob
//   <dir>/blobs/.tmp.*                  in-flight atomic writes; swept by Open()
//   <dir>/staging/                      callers may seal blobs here before PutFile(); swept
//   <dir>/quarantine/<id>.<ms>.*        blobs (and owners) that failed verification

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/blob/atomic_file.h"
#include "common/blob/blob_store.h"
#include "common/blob/memory_blob.h"

namespace ctxmem::weights {
class MappedFile;
}

namespace ctxmem::blob {

struct FileBlobStoreOptions {
  std::string dir;                    // created (with parents' existence required) if missing
  uint64_t max_bytes = 0;             // budget for blob files, bytes; 0 = unlimited
  int64_t list_page_size_max = 1000;  // List() clamps page_size to [1, this]

  // InvalidArgument for an empty dir or a page size max < 1.
  absl::Status Validate() const;
};

class FileBlobStore final : public BlobStore {
 public:
  // Opens or creates the store: takes <dir>/LOCK (FailedPrecondition if another store holds
  // it), sweeps temp and staging files and owner files without a blob, keeps every sealed
  // blob (not verified until read; LRU order from file mtimes), then evicts down to the
  // budget. Internal/NotFound naming the path on I/O errors.
  static absl::StatusOr<std::unique_ptr<FileBlobStore>> Open(const FileBlobStoreOptions& options);

  FileBlobStore(const FileBlobStore&) = delete;
  FileBlobStore& operator=(const FileBlobStore&) = delete;
  ~FileBlobStore() override;  // every BlobHandle must be gone by then

  // Stores a sealed blob for `tenant`. The bytes are verified first (DataLoss / FailedPrecondition
  // as VerifyBlob; InvalidArgument if its metadata names another memory_id). If `id` exists,
  // only `tenant` is added to its owners (idempotent, the bytes are not rewritten). Otherwise
  // unpinned blobs are evicted, least recently used first, until it fits the budget
  // (ResourceExhausted with the numbers if it cannot), and it is written atomically: on any
  // failure nothing new is visible. InvalidArgument for a malformed id or tenant.
  absl::StatusOr<PutResult> Put(const std::string& id, const std::string& tenant,
                                absl::string_view sealed_bytes) override;
  // As Put, from a sealed file (e.g. sealed into staging_dir()). On OK the file is consumed:
  // renamed into the store (same filesystem), or copied and removed, or just removed when `id`
  // already existed. On failure it is left where it is for the caller.
  absl::StatusOr<PutResult> PutFile(const std::string& id, const std::string& tenant,
                                    const std::string& sealed_path) override;

  // Opens, verifies (once per open: handles alive at the same time share one verification)
  // and pins a blob. NotFound if absent or not owned by `tenant` (the two are
  // indistinguishable). DataLoss if it fails verification: it is moved to quarantine/ and is
  // NotFound from then on. FailedPrecondition for a blob of an unknown format version.
  absl::StatusOr<BlobHandle> Get(const std::string& id, const std::string& tenant) override;
  // NotFound as Get; never reads the blob.
  absl::StatusOr<StoredBlobStat> Stat(const std::string& id,
                                      const std::string& tenant) const override;
  // `tenant`'s blobs with ids > page_token, ascending, at most page_size (clamped to
  // [1, list_page_size_max]). InvalidArgument for a malformed page_token.
  absl::StatusOr<BlobPage> List(const std::string& tenant, int64_t page_size,
                                const std::string& page_token) const override;
  // The file's header bytes (BlobStore::ReadHeader). NotFound as Get.
  absl::StatusOr<std::string> ReadHeader(const std::string& id,
                                         const std::string& tenant) const override;
  // Removes `tenant` from the blob's owners and the blob once it has none (open handles keep
  // reading it). NotFound as Get.
  absl::Status Delete(const std::string& id, const std::string& tenant) override;

  uint64_t total_bytes() const;  // blob bytes stored now
  int64_t n_blobs() const;
  uint64_t max_bytes() const { return options_.max_bytes; }
  std::string BlobPath(const std::string& id) const;  // where `id` is (or would be) stored
  const std::string& staging_dir() const override { return staging_dir_; }
  std::string url() const override { return "dir:" + options_.dir; }
  std::optional<BlobStoreUsage> usage() const override;

  // The next blob write fails as `fault` says (crash-safety tests).
  void ForTesting_SetNextWriteFault(const AtomicFileFault& fault);

  // True for ids this store accepts: 1..128 characters of [0-9A-Za-z_-].
  static bool IsValidId(absl::string_view id);

 private:
  struct Opened;  // the mapped, verified file (an OpenedBlob)
  struct Pin;     // a BlobPin that unpins on destruction

  struct Entry {
    uint64_t n_bytes = 0;
    std::set<std::string> owners;
    int64_t n_pins = 0;
    uint64_t generation = 0;  // unique per entry instance, so stale handles unpin nothing
    uint64_t lru_tick = 0;    // key in lru_
    int64_t mtime_unix_ms = 0;
    std::weak_ptr<const Opened> opened;  // shared while any handle lives
  };

  explicit FileBlobStore(FileBlobStoreOptions options);
  absl::Status Scan() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<PutResult> PutVerified(const std::string& id, const std::string& tenant,
                                        absl::string_view bytes, const std::string* source_path);
  // Evicts unpinned entries, least recently used first, until `n_bytes` more fit the budget.
  absl::Status MakeRoom(uint64_t n_bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Touch(const std::string& id, Entry* entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveEntry(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Quarantine(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteOwners(const std::string& id, const std::set<std::string>& owners) const;
  const Entry* FindOwned(const std::string& id, const std::string& tenant) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unpin(const std::string& id, uint64_t generation);
  std::string OwnersPath(const std::string& id) const;

  // Constant after construction.
  const FileBlobStoreOptions options_;
  const std::string blobs_dir_;
  const std::string staging_dir_;
  const std::string quarantine_dir_;
  int lock_fd_ = -1;  // holds the flock on <dir>/LOCK

  mutable absl::Mutex mu_;
  absl::CondVar pending_done_;  // signalled when an id leaves pending_
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);  // by id, ascending
  std::map<uint64_t, std::string> lru_ ABSL_GUARDED_BY(mu_);   // tick -> id, oldest first
  std::set<std::string> pending_ ABSL_GUARDED_BY(mu_);         // ids being written by a Put
  uint64_t total_bytes_ ABSL_GUARDED_BY(mu_) = 0;              // sum of entries' n_bytes
  uint64_t reserved_bytes_ ABSL_GUARDED_BY(mu_) = 0;           // budget held by in-flight Puts
  uint64_t next_tick_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_generation_ ABSL_GUARDED_BY(mu_) = 1;
  std::optional<AtomicFileFault> next_fault_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ctxmem::blob
