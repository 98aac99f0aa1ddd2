#pragma once
// BlobStore: where sealed memory blobs live (DESIGN.md "Storage at scale"). A blob is stored
// under (tenant, id): a tenant sees, stats, reads and deletes only its own blobs, and another
// tenant's blob of the same id is indistinguishable from a missing one (NotFound). Blobs are
// immutable and content-addressed, so a Put of an id that exists is an idempotent no-op.
// Two implementations: FileBlobStore (a directory; the embedded default) and S3BlobStore (any
// S3-API object store, tenant = key prefix).
// Thread-safety: implementations are thread-safe.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/blob/memory_blob.h"

namespace ctxmem::blob {

// What Stat()/List() report about a stored blob (no verification involved).
struct StoredBlobStat {
  std::string id;
  uint64_t n_bytes = 0;       // blob size
  int64_t n_pins = 0;         // open handles right now (0 where the store cannot tell)
  int64_t mtime_unix_ms = 0;  // last store or read (directory) / last write (S3)
};

struct BlobPage {
  std::vector<StoredBlobStat> blobs;  // ascending id
  std::string next_page_token;        // "" = no more
};

struct PutResult {
  bool created = false;  // false: the id existed for this tenant (or another owner was added)
  uint64_t n_bytes = 0;  // size of the stored blob
};

// Bytes and blobs a store holds, where it knows them cheaply (a directory does; S3 does not).
struct BlobStoreUsage {
  uint64_t total_bytes = 0;
  int64_t n_blobs = 0;
  uint64_t max_bytes = 0;  // 0 = unlimited
};

// The verified bytes of an open blob (a file mapping, a downloaded buffer). Shared (rule 30) by
// every BlobHandle of the same open blob; immutable.
// Thread-safety: const methods only.
class OpenedBlob {
 public:
  virtual ~OpenedBlob() = default;
  virtual absl::string_view bytes() const = 0;  // the whole verified file
  virtual const BlobInfo& info() const = 0;     // metadata and checksums from verification
};

// Something a store keeps while a handle lives (FileBlobStore: the pin that stops eviction);
// released by its destructor.
class BlobPin {
 public:
  virtual ~BlobPin() = default;
};

// A verified blob as returned by BlobStore::Get. Its bytes stay readable even if the blob is
// deleted or evicted meanwhile. Move-only; must be destroyed before the store that returned it.
// Thread-safety: const methods only.
class BlobHandle {
 public:
  BlobHandle() = default;
  BlobHandle(std::string id, std::shared_ptr<const OpenedBlob> opened,
             std::unique_ptr<BlobPin> pin = nullptr)
      : id_(std::move(id)), opened_(std::move(opened)), pin_(std::move(pin)) {}
  BlobHandle(BlobHandle&&) noexcept = default;
  BlobHandle& operator=(BlobHandle&&) noexcept = default;  // releases the old pin
  BlobHandle(const BlobHandle&) = delete;
  BlobHandle& operator=(const BlobHandle&) = delete;

  const std::string& id() const { return id_; }
  absl::string_view bytes() const;  // empty for an empty (or moved-from) handle
  const BlobInfo& info() const;     // an empty BlobInfo for an empty handle
  bool empty() const { return opened_ == nullptr; }

 private:
  std::string id_;
  std::shared_ptr<const OpenedBlob> opened_;
  std::unique_ptr<BlobPin> pin_;  // destroyed first (declared last)
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;

  // Stores a sealed blob for `tenant`. The bytes are verified first (DataLoss /
  // FailedPrecondition as VerifyBlob; InvalidArgument if its metadata names another
  // memory_id). If the tenant already has `id`, nothing is rewritten (idempotent). On any
  // failure nothing new is visible. InvalidArgument for a malformed id or tenant;
  // ResourceExhausted when it does not fit a budget; Unavailable when a remote store cannot be
  // reached (after its retries).
  virtual absl::StatusOr<PutResult> Put(const std::string& id, const std::string& tenant,
                                        absl::string_view sealed_bytes) = 0;
  // As Put, from a sealed file (e.g. sealed into staging_dir()). On OK the file is consumed
  // (moved into the store, or removed); on failure it is left where it is for the caller.
  virtual absl::StatusOr<PutResult> PutFile(const std::string& id, const std::string& tenant,
                                            const std::string& sealed_path) = 0;

  // Reads and verifies the tenant's blob. NotFound if absent or not the tenant's; DataLoss if
  // it fails verification (it is never served); FailedPrecondition for an unknown format
  // version; Unavailable when a remote store cannot be reached.
  virtual absl::StatusOr<BlobHandle> Get(const std::string& id, const std::string& tenant) = 0;
  // HEAD: NotFound as Get; never reads the blob.
  virtual absl::StatusOr<StoredBlobStat> Stat(const std::string& id,
                                              const std::string& tenant) const = 0;
  // The blob's first bytes [0, 8 + N): the safetensors header length and JSON header,
  // unverified (for listing metadata without reading the tensors). NotFound as Get; DataLoss
  // when the bytes do not start like a safetensors file.
  virtual absl::StatusOr<std::string> ReadHeader(const std::string& id,
                                                 const std::string& tenant) const = 0;
  // `tenant`'s blobs with ids > page_token, ascending, at most page_size (clamped to the
  // store's page limit). InvalidArgument for a malformed page_token.
  virtual absl::StatusOr<BlobPage> List(const std::string& tenant, int64_t page_size,
                                        const std::string& page_token) const = 0;
  // Removes the tenant's blob (open handles keep reading it). NotFound as Get.
  virtual absl::Status Delete(const std::string& id, const std::string& tenant) = 0;

  // A local directory for sealing blobs before PutFile (swept when the store opens).
  virtual const std::string& staging_dir() const = 0;
  // Where the blobs are, for logs: "dir:/path" or "s3://bucket/prefix".
  virtual std::string url() const = 0;
  // Sizes, when the store knows them without asking a server (nullopt for S3).
  virtual std::optional<BlobStoreUsage> usage() const = 0;
};

}  // namespace ctxmem::blob
