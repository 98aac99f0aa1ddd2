#pragma once
// S3BlobStore: the BlobStore on an S3-API bucket (AWS, SeaweedFS, MinIO, Ceph RGW), shared by
// every compressor and decoder replica. The tenant is the key prefix:
//
//   <prefix>/<tenant>/<id>.safetensors     one sealed blob (prefix "" = none)
//     x-amz-meta-sha256: <64 hex>          SHA-256 of the whole object, set by Put
//
// Puts are content-addressed and idempotent: If-None-Match: * (a second Put of an id finds it
// and writes nothing), multipart above a size threshold (an unfinished upload is never
// visible, so a writer killed mid-upload leaves no partial object). Get downloads the object
// (resuming a broken transfer), checks its SHA-256 against the metadata and verifies the
// blob; one that still fails after a second download is deleted from the bucket and reported
// DataLoss, so it is recomputed instead of served. There is no budget or LRU here: lifetime
// is the bucket's business (DeleteMemory, or a lifecycle rule).
// Thread-safety: thread-safe.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/blob/blob_store.h"
#include "common/blob/s3_client.h"

namespace ctxmem::blob {

// "s3://BUCKET/PREFIX" split in two; the prefix loses surrounding slashes.
struct S3StoreUrl {
  std::string bucket;
  std::string prefix;
};
// InvalidArgument unless `url` is s3://BUCKET[/PREFIX] with a valid bucket name and a prefix
// of [0-9A-Za-z_.-/] without empty, "." or ".." segments.
absl::StatusOr<S3StoreUrl> ParseS3StoreUrl(const std::string& url);

struct S3BlobStoreOptions {
  S3ClientOptions client;   // bucket, endpoint, region, credentials, timeouts
  std::string prefix;       // key prefix without surrounding '/'; "" = none
  std::string staging_dir;  // local directory for sealing; created, swept at Open
  uint64_t multipart_threshold_bytes = uint64_t{64} << 20;  // larger blobs go up in parts
  uint64_t part_bytes = uint64_t{16} << 20;                 // part size (S3: >= 5 MiB)
  uint64_t max_blob_bytes = uint64_t{8} << 30;              // Get refuses larger objects
  int64_t list_page_size_max = 1000;                        // List clamps to [1, this]

  // InvalidArgument naming the field (client options too).
  absl::Status Validate() const;
};

class S3BlobStore final : public BlobStore {
 public:
  // Validates, creates the client and the staging directory (removing files left there).
  // Does not contact the server: the first request does (so a store opens while S3 is down).
  static absl::StatusOr<std::unique_ptr<S3BlobStore>> Open(const S3BlobStoreOptions& options);

  absl::StatusOr<PutResult> Put(const std::string& id, const std::string& tenant,
                                absl::string_view sealed_bytes) override;
  absl::StatusOr<PutResult> PutFile(const std::string& id, const std::string& tenant,
                                    const std::string& sealed_path) override;
  absl::StatusOr<BlobHandle> Get(const std::string& id, const std::string& tenant) override;
  absl::StatusOr<StoredBlobStat> Stat(const std::string& id,
                                      const std::string& tenant) const override;
  absl::StatusOr<std::string> ReadHeader(const std::string& id,
                                         const std::string& tenant) const override;
  absl::StatusOr<BlobPage> List(const std::string& tenant, int64_t page_size,
                                const std::string& page_token) const override;
  absl::Status Delete(const std::string& id, const std::string& tenant) override;
  const std::string& staging_dir() const override { return options_.staging_dir; }
  std::string url() const override;
  std::optional<BlobStoreUsage> usage() const override { return std::nullopt; }

  // The object key of (tenant, id).
  std::string KeyOf(const std::string& id, const std::string& tenant) const;
  S3Client& client() { return *client_; }
  // True for tenants usable as a key segment: 1..128 characters of [0-9A-Za-z_.-], not "."
  // or "..".
  static bool IsValidTenant(absl::string_view tenant);

 private:
  S3BlobStore(S3BlobStoreOptions options, std::unique_ptr<S3Client> client)
      : options_(std::move(options)), client_(std::move(client)) {}
  std::string TenantPrefix(const std::string& tenant) const;
  absl::Status PutMultipart(const std::string& key, absl::string_view bytes,
                            const std::string& sha256, bool* created);
  // Downloads and checks one object: NotFound, Unavailable, DataLoss (sha or blob checks),
  // FailedPrecondition (unknown format version).
  absl::StatusOr<BlobHandle> Download(const std::string& id, const std::string& key) const;

  // Constant after construction.
  const S3BlobStoreOptions options_;
  const std::unique_ptr<S3Client> client_;
};

}  // namespace ctxmem::blob
