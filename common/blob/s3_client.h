#pragma once
// S3Client: the S3 REST calls the S3 blob store needs, signed with SigV4 (sigv4_signer.h) and
// sent with libcurl: PutObject (optionally If-None-Match: *), multipart upload, ranged
// GetObject that resumes a broken body where it stopped, HeadObject, ListObjectsV2 and
// DeleteObject, against path-style endpoints (SeaweedFS, MinIO, Ceph RGW:
// http://host:port/bucket/key) or AWS (virtual-hosted: https://bucket.s3.region.amazonaws.com).
// Every call has a connect timeout, a stall timeout and a whole-call deadline, and is retried
// with exponential backoff (and jitter) on connection errors, 5xx, 429 and SlowDown. Payloads
// are signed: x-amz-content-sha256 is the body's SHA-256.
// Statuses: NotFound (404), AlreadyExists (412 to If-None-Match), PermissionDenied (403),
// OutOfRange (416), InvalidArgument (other 4xx), Unavailable (unreachable / 5xx after the
// retries, or the deadline passed), DataLoss (a body shorter than its Content-Length).
// Every attempt, retry and resume is reported to S3ClientOptions::observer when set.
// Thread-safety: thread-safe (each call uses its own curl handle from a small pool).

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/blob/s3_observer.h"
#include "common/blob/sigv4_signer.h"

namespace ctxmem::blob {

struct S3ClientOptions {
  // "http://127.0.0.1:8333" (path-style); "" = AWS: https://s3.<region>.amazonaws.com.
  std::string endpoint;
  std::string region = "us-east-1";
  std::string bucket;           // 3..63 characters of [a-z0-9.-]
  bool virtual_hosted = false;  // bucket in the host name (AWS); forced on when endpoint == ""
  SigV4Credentials credentials;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds call_timeout{600000};  // one call, retries included
  int64_t stall_seconds = 30;  // an attempt moving < 1 KiB/s for this long is abandoned
  int max_attempts = 5;        // per call (1 = no retries)
  std::chrono::milliseconds backoff_initial{100};  // doubles per retry, with jitter
  std::chrono::milliseconds backoff_max{5000};
  int max_pooled_handles = 16;            // idle curl handles kept (their connections are reused)
  int64_t max_send_bytes_per_second = 0;  // upload bandwidth cap per request; 0 = none
  int64_t max_recv_bytes_per_second = 0;  // download bandwidth cap per request; 0 = none
  S3Observer* observer =
      nullptr;  // told of every attempt (metrics); not owned, outlives the client

  // InvalidArgument naming the field: bucket name, endpoint scheme (http/https), credentials,
  // positive timeouts and attempts.
  absl::Status Validate() const;
};

struct S3Object {
  std::string key;
  uint64_t size = 0;  // bytes
  std::string etag;   // as the server quotes it
  int64_t last_modified_unix_ms = 0;
  std::map<std::string, std::string> metadata;  // x-amz-meta-* without the prefix, lowercase
};

struct S3ListPage {
  std::vector<S3Object> objects;  // ascending key (metadata not filled)
  bool truncated = false;
  std::string next_continuation_token;
};

struct S3Part {
  int number = 0;  // 1..10000
  std::string etag;
};

// What the client did, summed over its calls (for logs and tests).
struct S3ClientStats {
  int64_t n_requests = 0;  // attempts sent
  int64_t n_retries = 0;
  int64_t n_resumes = 0;  // GETs continued with a Range after a broken body
};

class S3Client {
 public:
  // Validates the options and initializes libcurl (once per process).
  static absl::StatusOr<std::unique_ptr<S3Client>> Create(const S3ClientOptions& options);
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  // PUT of a whole object with `metadata` (x-amz-meta-*). With `if_none_match`, sends
  // If-None-Match: * and returns AlreadyExists when the key exists (nothing is written).
  absl::Status PutObject(const std::string& key, absl::string_view body,
                         const std::map<std::string, std::string>& metadata, bool if_none_match);
  // Multipart upload. Parts are >= 5 MiB except the last. An upload that is neither completed
  // nor aborted stays invisible (only its parts use space until the bucket's lifecycle rule
  // or AbortMultipartUpload removes them).
  absl::StatusOr<std::string> CreateMultipartUpload(
      const std::string& key, const std::map<std::string, std::string>& metadata);
  absl::StatusOr<std::string> UploadPart(const std::string& key, const std::string& upload_id,
                                         int part_number, absl::string_view body);
  // With `if_none_match`: AlreadyExists when the key exists meanwhile.
  absl::Status CompleteMultipartUpload(const std::string& key, const std::string& upload_id,
                                       const std::vector<S3Part>& parts, bool if_none_match);
  absl::Status AbortMultipartUpload(const std::string& key, const std::string& upload_id);

  absl::StatusOr<S3Object> HeadObject(const std::string& key) const;
  // Bytes [offset, min(offset + length, size)) of the object (length 0 = to the end), appended
  // to *out; OutOfRange when offset is past the end.
  // A body that breaks is resumed with a Range from the last byte received (If-Match on the
  // first answer's ETag, so a replaced object is not spliced). Returns the object's HEAD
  // fields (size = the whole object's).
  absl::StatusOr<S3Object> GetObject(const std::string& key, uint64_t offset, uint64_t length,
                                     std::string* out) const;
  // One page of keys under `prefix` after `start_after` (or from `continuation_token`),
  // at most `max_keys` (1..1000).
  absl::StatusOr<S3ListPage> ListObjectsV2(const std::string& prefix,
                                           const std::string& start_after,
                                           const std::string& continuation_token,
                                           int max_keys) const;
  // Deletes the key (OK if it did not exist, as S3 does).
  absl::Status DeleteObject(const std::string& key);

  S3ClientStats stats() const;
  const S3ClientOptions& options() const { return options_; }
  // "s3://bucket" at the endpoint, for logs.
  std::string Describe() const;

  struct Request;   // one call: method, key, query, headers, body
  struct Response;  // status, headers, body

 private:
  struct CurlDeleter {
    void operator()(void* handle) const;
  };
  using CurlPtr = std::unique_ptr<void, CurlDeleter>;

  explicit S3Client(S3ClientOptions options);
  // Sends `request`, retrying as the class comment says. `sink` (optional) receives body bytes
  // as they arrive instead of the response body; `attempt_start` is told before each attempt
  // (GetObject moves its Range there).
  absl::StatusOr<Response> Execute(Request& request) const;
  absl::StatusOr<Response> Attempt(const Request& request) const;
  CurlPtr TakeHandle() const;
  void ReturnHandle(CurlPtr handle) const;

  // Constant after construction.
  const S3ClientOptions options_;
  std::string scheme_host_;  // "http://127.0.0.1:8333"
  std::string host_;         // Host header value

  mutable absl::Mutex mu_;
  mutable std::vector<CurlPtr> pool_ ABSL_GUARDED_BY(mu_);
  mutable S3ClientStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ctxmem::blob
