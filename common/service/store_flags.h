#pragma once
// StoreFlags: the blob store options both servers take (--store-url s3://BUCKET/PREFIX and the
// --s3-* options), registered the same way on both, and the S3BlobStore options built from
// them plus the standard AWS credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and
// AWS_SESSION_TOKEN) from the environment, or --s3-credentials-file (the AWS shared
// credentials INI format, profile --s3-profile).
// Thread-safety: plain value type and free functions.

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/blob/s3_blob_store.h"
#include "common/blob/sigv4_signer.h"

namespace ctxmem::service {

struct StoreFlags {
  std::string store_url;    // "" = the directory store (compressor) / compressors (decoder)
  std::string s3_endpoint;  // "" = AWS (https://s3.<region>.amazonaws.com, virtual-hosted)
  std::string s3_region = "us-east-1";
  bool s3_virtual_hosted = false;  // bucket in the host name (AWS style) on a custom endpoint
  std::string s3_credentials_file;
  std::string s3_profile = "default";
  int s3_max_attempts = 5;
  int64_t s3_connect_timeout_ms = 5000;
  int64_t s3_timeout_ms = 600000;  // one call, retries included
  uint64_t s3_multipart_threshold_bytes = uint64_t{64} << 20;
  uint64_t s3_part_bytes = uint64_t{16} << 20;
  int64_t s3_max_upload_bytes_per_second = 0;    // 0 = unlimited
  int64_t s3_max_download_bytes_per_second = 0;  // 0 = unlimited

  bool s3() const { return !store_url.empty(); }
};

// Registers --store-url, --s3-endpoint, --s3-region, --s3-virtual-hosted,
// --s3-credentials-file, --s3-profile, --s3-max-attempts, --s3-connect-timeout-ms,
// --s3-timeout-ms, --s3-multipart-threshold-bytes, --s3-part-bytes,
// --s3-max-upload-bytes-per-second, --s3-max-download-bytes-per-second. *flags must outlive
// parsing.
void AddStoreFlags(CLI::App& app, StoreFlags* flags);

// Looks up an environment variable (nullptr = unset); main passes std::getenv.
using EnvLookup = std::function<const char*(const char*)>;

// The S3 store options of `flags` (which must name a store URL), sealing into `staging_dir`.
// Credentials: the file when given, else the environment. InvalidArgument naming the flag or
// variable for a bad URL, missing credentials or bad limits; NotFound / InvalidArgument for an
// unreadable or malformed credentials file.
absl::StatusOr<blob::S3BlobStoreOptions> S3StoreOptionsFromFlags(const StoreFlags& flags,
                                                                 const std::string& staging_dir,
                                                                 const EnvLookup& env);

// The [profile] section's aws_access_key_id / aws_secret_access_key (/ aws_session_token) of
// an AWS shared credentials file's text. InvalidArgument naming the profile when either key is
// missing.
absl::StatusOr<blob::SigV4Credentials> ParseAwsCredentials(absl::string_view text,
                                                           absl::string_view profile);

}  // namespace ctxmem::service
