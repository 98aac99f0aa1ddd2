#include "common/blob/s3_blob_store.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/blob/file_blob_store.h"
#include "common/blob/sha256.h"
#include "common/status.h"
#include "common/weights/mapped_file.h"

// Invariants:
//
// * An object under <prefix>/<tenant>/ is only ever created whole (a single PUT or a completed
//   multipart upload), carries x-amz-meta-sha256 of its bytes, and is never overwritten
//   (If-None-Match: *); its bytes passed VerifyBlob before they were sent.
// * Get() serves bytes only after their SHA-256 matched the metadata and VerifyBlob() passed
//   on that very buffer.

namespace ctxmem::blob {

namespace {

namespace fs = std::filesystem;

constexpr absl::string_view kBlobSuffix = ".safetensors";
constexpr absl::string_view kShaKey = "sha256";  // x-amz-meta-sha256
constexpr uint64_t kMinPartBytes = uint64_t{5} << 20;
constexpr uint64_t kHeaderProbeBytes = 64 << 10;  // first ranged read of ReadHeader

struct DownloadedBlob final : OpenedBlob {
  absl::string_view bytes() const override { return data; }
  const BlobInfo& info() const override { return blob_info; }

  std::string data;
  BlobInfo blob_info;
};

bool IsValidSegment(absl::string_view s, size_t max_chars) {
  if (s.empty() || s.size() > max_chars || s == "." || s == "..") return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

absl::Status CheckId(const std::string& id) {
  if (!FileBlobStore::IsValidId(id)) {
    return absl::InvalidArgumentError(absl::StrCat("malformed blob id '", id.substr(0, 200),
                                                   "' (want 1..128 characters of [0-9A-Za-z_-])"));
  }
  return absl::OkStatus();
}

absl::Status CheckTenant(const std::string& tenant) {
  if (!S3BlobStore::IsValidTenant(tenant)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tenant '", tenant.substr(0, 200),
        "' cannot be an S3 key segment (want 1..128 characters of [0-9A-Za-z_.-], not . or ..)"));
  }
  return absl::OkStatus();
}

absl::Status NotFound(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("no blob '", id, "'"));
}

// S3's NotFound for an object names the key; callers see the blob id instead.
absl::Status ForBlob(const absl::Status& status, const std::string& id) {
  if (absl::IsNotFound(status)) return NotFound(id);
  return status;
}

}  // namespace

absl::StatusOr<S3StoreUrl> ParseS3StoreUrl(const std::string& url) {
  if (!absl::StartsWith(url, "s3://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("store URL '", url.substr(0, 200), "' is not s3://BUCKET/PREFIX"));
  }
  const std::string rest = url.substr(5);
  const size_t slash = rest.find('/');
  S3StoreUrl out;
  out.bucket = rest.substr(0, slash);
  std::string prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
  while (absl::EndsWith(prefix, "/")) prefix.pop_back();
  S3ClientOptions probe;
  probe.bucket = out.bucket;
  probe.credentials = {"x", "x", ""};
  if (absl::Status s = probe.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("store URL '", url, "': ", s.message()));
  }
  if (!prefix.empty()) {
    for (absl::string_view segment : absl::StrSplit(prefix, '/')) {
      if (!IsValidSegment(segment, 255)) {
        return absl::InvalidArgumentError(
            absl::StrCat("store URL '", url, "': prefix segment '", segment,
                         "' is not 1..255 characters of [0-9A-Za-z_.-] (and not . or ..)"));
      }
    }
  }
  out.prefix = std::move(prefix);
  return out;
}

absl::Status S3BlobStoreOptions::Validate() const {
  CTXMEM_RETURN_IF_ERROR(client.Validate());
  if (staging_dir.empty()) return absl::InvalidArgumentError("S3 store staging_dir is empty");
  if (part_bytes < kMinPartBytes || multipart_threshold_bytes < part_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "S3 part_bytes=", part_bytes, " must be >= ", kMinPartBytes,
        " and multipart_threshold_bytes=", multipart_threshold_bytes, " >= part_bytes"));
  }
  if (list_page_size_max < 1 || max_blob_bytes == 0) {
    return absl::InvalidArgumentError("S3 list_page_size_max and max_blob_bytes must be >= 1");
  }
  if (!prefix.empty()) {
    CTXMEM_RETURN_IF_ERROR(
        ParseS3StoreUrl(absl::StrCat("s3://", client.bucket, "/", prefix)).status());
  }
  return absl::OkStatus();
}

bool S3BlobStore::IsValidTenant(absl::string_view tenant) { return IsValidSegment(tenant, 128); }

absl::StatusOr<std::unique_ptr<S3BlobStore>> S3BlobStore::Open(const S3BlobStoreOptions& options) {
  CTXMEM_RETURN_IF_ERROR(options.Validate());
  std::error_code ec;
  fs::create_directories(options.staging_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create ", options.staging_dir, ": ", ec.message()));
  }
  for (const fs::directory_entry& entry : fs::directory_iterator(options.staging_dir, ec)) {
    if (entry.is_regular_file()) fs::remove(entry.path(), ec);  // sealed by a dead process
  }
  CTXMEM_ASSIGN_OR_RETURN(std::unique_ptr<S3Client> client, S3Client::Create(options.client));
  return std::unique_ptr<S3BlobStore>(new S3BlobStore(options, std::move(client)));
}

std::string S3BlobStore::url() const {
  return absl::StrCat("s3://", options_.client.bucket,
                      options_.prefix.empty() ? "" : "/" + options_.prefix);
}

std::string S3BlobStore::TenantPrefix(const std::string& tenant) const {
  return options_.prefix.empty() ? absl::StrCat(tenant, "/")
                                 : absl::StrCat(options_.prefix, "/", tenant, "/");
}

std::string S3BlobStore::KeyOf(const std::string& id, const std::string& tenant) const {
  return absl::StrCat(TenantPrefix(tenant), id, kBlobSuffix);
}

absl::StatusOr<PutResult> S3BlobStore::Put(const std::string& id, const std::string& tenant,
                                           absl::string_view sealed_bytes) {
  CTXMEM_RETURN_IF_ERROR(CheckId(id));
  CTXMEM_RETURN_IF_ERROR(CheckTenant(tenant));
  absl::StatusOr<BlobInfo> info = VerifyBlob(sealed_bytes);
  if (!info.ok()) {
    return WithContext(info.status(), absl::StrCat("refusing to store blob '", id, "'"));
  }
  if (!info->metadata.memory_id.empty() && info->metadata.memory_id != id) {
    return absl::InvalidArgumentError(absl::StrCat(
        "blob says it is memory '", info->metadata.memory_id, "' but was put as '", id, "'"));
  }
  CTXMEM_ASSIGN_OR_RETURN(const std::string sha256, Sha256Hex(sealed_bytes));
  const std::string key = KeyOf(id, tenant);
  PutResult result;
  result.n_bytes = sealed_bytes.size();
  if (sealed_bytes.size() > options_.multipart_threshold_bytes) {
    CTXMEM_RETURN_IF_ERROR(PutMultipart(key, sealed_bytes, sha256, &result.created));
    return result;
  }
  absl::Status status = client_->PutObject(key, sealed_bytes, {{std::string(kShaKey), sha256}},
                                           /*if_none_match=*/true);
  if (absl::IsAlreadyExists(status)) return result;  // created = false
  if (!status.ok()) return WithContext(status, absl::StrCat("storing blob '", id, "'"));
  result.created = true;
  return result;
}

absl::Status S3BlobStore::PutMultipart(const std::string& key, absl::string_view bytes,
                                       const std::string& sha256, bool* created) {
  *created = false;
  absl::StatusOr<S3Object> existing = client_->HeadObject(key);
  if (existing.ok()) return absl::OkStatus();
  if (!absl::IsNotFound(existing.status())) return existing.status();
  CTXMEM_ASSIGN_OR_RETURN(const std::string upload_id,
                          client_->CreateMultipartUpload(key, {{std::string(kShaKey), sha256}}));
  std::vector<S3Part> parts;
  absl::Status status = absl::OkStatus();
  for (uint64_t offset = 0; offset < bytes.size() && status.ok(); offset += options_.part_bytes) {
    const int number = static_cast<int>(parts.size()) + 1;
    absl::StatusOr<std::string> etag =
        client_->UploadPart(key, upload_id, number, bytes.substr(offset, options_.part_bytes));
    status = etag.status();
    if (etag.ok()) parts.push_back({number, *etag});
  }
  if (status.ok()) {
    status = client_->CompleteMultipartUpload(key, upload_id, parts, /*if_none_match=*/true);
    if (status.ok()) {
      *created = true;
      return status;
    }
    if (absl::IsAlreadyExists(status)) {
      client_->AbortMultipartUpload(key, upload_id).IgnoreError();
      return absl::OkStatus();
    }
    if (absl::IsNotFound(status)) {  // a retried Complete whose first try succeeded
      absl::StatusOr<S3Object> done = client_->HeadObject(key);
      if (done.ok() && done->metadata[std::string(kShaKey)] == sha256) {
        *created = true;
        return absl::OkStatus();
      }
    }
  }
  client_->AbortMultipartUpload(key, upload_id).IgnoreError();  // best effort; invisible anyway
  return WithContext(status, absl::StrCat("multipart upload of ", key));
}

absl::StatusOr<PutResult> S3BlobStore::PutFile(const std::string& id, const std::string& tenant,
                                               const std::string& sealed_path) {
  CTXMEM_ASSIGN_OR_RETURN(std::unique_ptr<weights::MappedFile> file,
                          weights::MappedFile::Open(sealed_path));
  const absl::string_view bytes(reinterpret_cast<const char*>(file->data()),
                                static_cast<size_t>(file->size()));
  CTXMEM_ASSIGN_OR_RETURN(PutResult result, Put(id, tenant, bytes));
  file.reset();
  unlink(sealed_path.c_str());  // consumed
  return result;
}

absl::StatusOr<BlobHandle> S3BlobStore::Download(const std::string& id,
                                                 const std::string& key) const {
  CTXMEM_ASSIGN_OR_RETURN(const S3Object head, client_->HeadObject(key));
  if (head.size > options_.max_blob_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("blob '", id, "' has ", head.size,
                                                     " bytes, more than the limit of ",
                                                     options_.max_blob_bytes));
  }
  auto blob = std::make_shared<DownloadedBlob>();
  blob->data.reserve(head.size);
  CTXMEM_ASSIGN_OR_RETURN(const S3Object object, client_->GetObject(key, 0, 0, &blob->data));
  auto sha = object.metadata.find(std::string(kShaKey));
  if (sha == object.metadata.end() || !IsSha256Hex(sha->second)) {
    return absl::DataLossError(
        absl::StrCat("blob '", id, "' has no x-amz-meta-sha256 (not written by ctxmem)"));
  }
  CTXMEM_ASSIGN_OR_RETURN(const std::string got, Sha256Hex(blob->data));
  if (got != sha->second) {
    return absl::DataLossError(
        absl::StrCat("blob '", id, "' SHA-256 ", got, " differs from its metadata ", sha->second));
  }
  CTXMEM_ASSIGN_OR_RETURN(blob->blob_info, VerifyBlob(blob->data));
  if (!blob->blob_info.metadata.memory_id.empty() && blob->blob_info.metadata.memory_id != id) {
    return absl::DataLossError(
        absl::StrCat("object ", key, " holds memory '", blob->blob_info.metadata.memory_id, "'"));
  }
  return BlobHandle(id, std::move(blob));
}

absl::StatusOr<BlobHandle> S3BlobStore::Get(const std::string& id, const std::string& tenant) {
  CTXMEM_RETURN_IF_ERROR(CheckId(id));
  if (!IsValidTenant(tenant)) return NotFound(id);
  const std::string key = KeyOf(id, tenant);
  absl::StatusOr<BlobHandle> handle = Download(id, key);
  if (handle.ok()) return handle;
  if (!absl::IsDataLoss(handle.status())) return ForBlob(handle.status(), id);
  // Once more, in case the bytes broke on the way; then it is the object that is bad.
  handle = Download(id, key);
  if (!absl::IsDataLoss(handle.status())) {
    if (handle.ok()) return handle;
    return ForBlob(handle.status(), id);
  }
  client_->DeleteObject(key).IgnoreError();  // never serve it; the next Put recomputes it
  return absl::DataLossError(absl::StrCat("blob '", id, "' failed verification and was ",
                                          "removed from the bucket: ", handle.status().message()));
}

absl::StatusOr<StoredBlobStat> S3BlobStore::Stat(const std::string& id,
                                                 const std::string& tenant) const {
  CTXMEM_RETURN_IF_ERROR(CheckId(id));
  if (!IsValidTenant(tenant)) return NotFound(id);
  absl::StatusOr<S3Object> head = client_->HeadObject(KeyOf(id, tenant));
  if (!head.ok()) return ForBlob(head.status(), id);
  return StoredBlobStat{id, head->size, 0, head->last_modified_unix_ms};
}

absl::StatusOr<std::string> S3BlobStore::ReadHeader(const std::string& id,
                                                    const std::string& tenant) const {
  CTXMEM_RETURN_IF_ERROR(CheckId(id));
  if (!IsValidTenant(tenant)) return NotFound(id);
  const std::string key = KeyOf(id, tenant);
  std::string bytes;
  absl::StatusOr<S3Object> object = client_->GetObject(key, 0, kHeaderProbeBytes, &bytes);
  if (absl::IsOutOfRange(object.status())) {  // an empty object
    return absl::DataLossError(absl::StrCat("blob '", id, "' is empty"));
  }
  if (!object.ok()) return ForBlob(object.status(), id);
  if (bytes.size() < 8) {
    return absl::DataLossError(absl::StrCat("blob '", id, "' is not a memory blob (no header)"));
  }
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  if (n > SafetensorsLayout::kMaxHeaderBytes || n + 8 > object->size) {
    return absl::DataLossError(absl::StrCat("blob '", id, "' has a header length of ", n,
                                            " bytes, past its size ", object->size));
  }
  if (bytes.size() < 8 + n) {
    CTXMEM_RETURN_IF_ERROR(
        client_->GetObject(key, bytes.size(), 8 + n - bytes.size(), &bytes).status());
  }
  bytes.resize(8 + n);
  return bytes;
}

absl::StatusOr<BlobPage> S3BlobStore::List(const std::string& tenant, int64_t page_size,
                                           const std::string& page_token) const {
  if (!page_token.empty()) CTXMEM_RETURN_IF_ERROR(CheckId(page_token));
  BlobPage page;
  if (!IsValidTenant(tenant)) return page;
  const int limit = static_cast<int>(
      std::clamp<int64_t>(page_size, 1, std::min<int64_t>(options_.list_page_size_max, 1000)));
  const std::string prefix = TenantPrefix(tenant);
  std::string start_after = page_token.empty() ? "" : KeyOf(page_token, tenant);
  std::string continuation;
  // Keys that are not "<id>.safetensors" (none are written by ctxmem) are skipped, so a page
  // may need more than one request to fill.
  for (;;) {
    CTXMEM_ASSIGN_OR_RETURN(
        const S3ListPage listed,
        client_->ListObjectsV2(prefix, continuation.empty() ? start_after : "", continuation,
                               limit - static_cast<int>(page.blobs.size())));
    for (const S3Object& object : listed.objects) {
      absl::string_view name(object.key);
      if (!absl::ConsumePrefix(&name, prefix) || !absl::ConsumeSuffix(&name, kBlobSuffix) ||
          !FileBlobStore::IsValidId(name)) {
        continue;
      }
      page.blobs.push_back({std::string(name), object.size, 0, object.last_modified_unix_ms});
    }
    const bool full = static_cast<int>(page.blobs.size()) >= limit;
    if (!listed.truncated) return page;
    if (full) {
      page.next_page_token = page.blobs.back().id;
      return page;
    }
    if (listed.next_continuation_token.empty()) return page;
    continuation = listed.next_continuation_token;
  }
}

absl::Status S3BlobStore::Delete(const std::string& id, const std::string& tenant) {
  CTXMEM_RETURN_IF_ERROR(CheckId(id));
  if (!IsValidTenant(tenant)) return NotFound(id);
  const std::string key = KeyOf(id, tenant);
  absl::StatusOr<S3Object> head = client_->HeadObject(key);  // S3 deletes absent keys silently
  if (!head.ok()) return ForBlob(head.status(), id);
  return client_->DeleteObject(key);
}

}  // namespace ctxmem::blob
