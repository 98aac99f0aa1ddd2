#pragma once
// AWS Signature Version 4 (header-based) for S3 requests: the canonical request, the string to
// sign, the signing key derivation and the Authorization header, written from AWS's
// specification and checked against its published test vectors (tests/data/sigv4/).
// Thread-safety: free functions, thread-safe.
//
//   CanonicalRequest = Method \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n
//                      \n SignedHeaders \n PayloadHash
//   StringToSign     = "AWS4-HMAC-SHA256" \n AmzDate \n Date/Region/Service/"aws4_request" \n
//                      hex(SHA-256(CanonicalRequest))
//   SigningKey       = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, Date), Region), Service),
//                      "aws4_request")
//   Signature        = hex(HMAC(SigningKey, StringToSign))

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ctxmem::blob {

// SHA-256 of an empty payload, hex.
inline constexpr absl::string_view kEmptyPayloadSha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct SigV4Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // "" = none; else sent (and signed) as x-amz-security-token
};

// One request to sign. Paths, query names and values are given decoded (as they mean, not as
// they travel): the signer URI-encodes them once, as S3 wants.
struct SigV4Request {
  std::string method;  // "GET", "PUT", ...
  std::string path;    // absolute, decoded: "/bucket/key with spaces"
  std::vector<std::pair<std::string, std::string>> query;         // decoded (name, value)
  std::vector<std::pair<std::string, std::string>> headers;       // every header to sign, Host too
  std::string payload_sha256 = std::string(kEmptyPayloadSha256);  // hex or "UNSIGNED-PAYLOAD"
};

struct SigV4Options {
  std::string region = "us-east-1";
  std::string service = "s3";
  // Remove "." and ".." segments and repeated slashes from the path before encoding (what
  // AWS's generic test suite expects of services other than S3; S3 keys are taken verbatim).
  bool normalize_path = false;
};

struct SigV4Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signed_headers;  // "host;x-amz-date"
  std::string signature;       // 64 hex
  std::string authorization;   // the Authorization header's value
};

// Signs `request` at `amz_date` ("YYYYMMDDTHHMMSSZ", UTC; the caller sends the same value as
// X-Amz-Date or Date). InvalidArgument for a malformed date, an empty method, a path that does
// not start with '/', empty credentials, or a header name that is empty or not a token.
absl::StatusOr<SigV4Signature> SignV4(const SigV4Request& request,
                                      const SigV4Credentials& credentials,
                                      const SigV4Options& options, absl::string_view amz_date);

// RFC 3986 percent-encoding of every byte outside A-Z a-z 0-9 - . _ ~ (uppercase hex); '/'
// is kept when `keep_slash`.
std::string UriEncode(absl::string_view text, bool keep_slash);

// "YYYYMMDDTHHMMSSZ" of a Unix time in seconds, UTC.
std::string AmzDate(int64_t unix_seconds);

}  // namespace ctxmem::blob
