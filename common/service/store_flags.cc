#include "common/service/store_flags.h"

#include <chrono>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"

namespace ctxmem::service {

void AddStoreFlags(CLI::App& app, StoreFlags* flags) {
  app.add_option("--store-url", flags->store_url,
                 "blob store s3://BUCKET/PREFIX shared by all replicas (\"\" = local directory)");
  app.add_option("--s3-endpoint", flags->s3_endpoint,
                 "S3 endpoint URL, path-style (e.g. http://seaweedfs:8333); \"\" = AWS");
  app.add_option("--s3-region", flags->s3_region, "S3 region (SigV4 scope)")->capture_default_str();
  app.add_flag("--s3-virtual-hosted", flags->s3_virtual_hosted,
               "bucket in the host name on --s3-endpoint (AWS style) instead of the path");
  app.add_option("--s3-credentials-file", flags->s3_credentials_file,
                 "AWS shared credentials file (default: $AWS_ACCESS_KEY_ID / "
                 "$AWS_SECRET_ACCESS_KEY)");
  app.add_option("--s3-profile", flags->s3_profile, "profile in --s3-credentials-file")
      ->capture_default_str();
  app.add_option("--s3-max-attempts", flags->s3_max_attempts,
                 "tries per S3 call (retries back off exponentially)")
      ->capture_default_str();
  app.add_option("--s3-connect-timeout-ms", flags->s3_connect_timeout_ms, "S3 connect timeout")
      ->capture_default_str();
  app.add_option("--s3-timeout-ms", flags->s3_timeout_ms, "deadline of one S3 call, retries in")
      ->capture_default_str();
  app.add_option("--s3-multipart-threshold-bytes", flags->s3_multipart_threshold_bytes,
                 "blobs larger than this are uploaded in parts")
      ->capture_default_str();
  app.add_option("--s3-part-bytes", flags->s3_part_bytes, "multipart part size (>= 5 MiB)")
      ->capture_default_str();
  app.add_option("--s3-max-upload-bytes-per-second", flags->s3_max_upload_bytes_per_second,
                 "upload bandwidth cap per request (0 = none)")
      ->capture_default_str();
  app.add_option("--s3-max-download-bytes-per-second", flags->s3_max_download_bytes_per_second,
                 "download bandwidth cap per request (0 = none)")
      ->capture_default_str();
}

absl::StatusOr<blob::SigV4Credentials> ParseAwsCredentials(absl::string_view text,
                                                           absl::string_view profile) {
  blob::SigV4Credentials out;
  bool in_profile = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      in_profile = absl::StripAsciiWhitespace(line.substr(1, line.size() - 2)) == profile;
      continue;
    }
    if (!in_profile) continue;
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) continue;
    const absl::string_view key = absl::StripAsciiWhitespace(line.substr(0, eq));
    const std::string value(absl::StripAsciiWhitespace(line.substr(eq + 1)));
    if (key == "aws_access_key_id") out.access_key_id = value;
    if (key == "aws_secret_access_key") out.secret_access_key = value;
    if (key == "aws_session_token") out.session_token = value;
  }
  if (out.access_key_id.empty() || out.secret_access_key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "credentials profile [", profile, "] has no aws_access_key_id and aws_secret_access_key"));
  }
  return out;
}

absl::StatusOr<blob::S3BlobStoreOptions> S3StoreOptionsFromFlags(const StoreFlags& flags,
                                                                 const std::string& staging_dir,
                                                                 const EnvLookup& env) {
  absl::StatusOr<blob::S3StoreUrl> url = blob::ParseS3StoreUrl(flags.store_url);
  if (!url.ok()) return WithContext(url.status(), "--store-url");
  blob::S3BlobStoreOptions options;
  options.prefix = url->prefix;
  options.staging_dir = staging_dir;
  options.multipart_threshold_bytes = flags.s3_multipart_threshold_bytes;
  options.part_bytes = flags.s3_part_bytes;
  blob::S3ClientOptions& client = options.client;
  client.bucket = url->bucket;
  client.endpoint = flags.s3_endpoint;
  client.region = flags.s3_region;
  client.virtual_hosted = flags.s3_virtual_hosted;
  client.max_attempts = flags.s3_max_attempts;
  client.connect_timeout = std::chrono::milliseconds(flags.s3_connect_timeout_ms);
  client.call_timeout = std::chrono::milliseconds(flags.s3_timeout_ms);
  client.max_send_bytes_per_second = flags.s3_max_upload_bytes_per_second;
  client.max_recv_bytes_per_second = flags.s3_max_download_bytes_per_second;
  if (!flags.s3_credentials_file.empty()) {
    std::ifstream in(flags.s3_credentials_file);
    if (!in) {
      return absl::NotFoundError(
          absl::StrCat("--s3-credentials-file ", flags.s3_credentials_file, " cannot be read"));
    }
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<blob::SigV4Credentials> creds =
        ParseAwsCredentials(text.str(), flags.s3_profile);
    if (!creds.ok()) {
      return WithContext(creds.status(),
                         absl::StrCat("--s3-credentials-file ", flags.s3_credentials_file));
    }
    client.credentials = *std::move(creds);
  } else {
    const char* id = env("AWS_ACCESS_KEY_ID");
    const char* secret = env("AWS_SECRET_ACCESS_KEY");
    const char* token = env("AWS_SESSION_TOKEN");
    if (id == nullptr || *id == '\0' || secret == nullptr || *secret == '\0') {
      return absl::InvalidArgumentError(
          "--store-url s3://... needs credentials: set AWS_ACCESS_KEY_ID and "
          "AWS_SECRET_ACCESS_KEY, or pass --s3-credentials-file");
    }
    client.credentials = {id, secret, token != nullptr ? token : ""};
  }
  CTXMEM_RETURN_IF_ERROR(options.Validate());
  return options;
}

}  // namespace ctxmem::service
