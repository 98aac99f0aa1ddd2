#include "common/blob/sigv4_signer.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <ctime>
#include <map>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/blob/sha256.h"
#include "common/status.h"

namespace ctxmem::blob {
namespace {

constexpr absl::string_view kAlgorithm = "AWS4-HMAC-SHA256";

bool IsUnreserved(unsigned char c) {
  return absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

// HMAC-SHA256(key, data), raw 32 bytes.
absl::StatusOr<std::string> HmacSha256(absl::string_view key, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &n) == nullptr) {
    return absl::InternalError("OpenSSL HMAC-SHA256 failed");
  }
  return std::string(reinterpret_cast<const char*>(out), n);
}

// Removes "." and ".." segments and empty segments (repeated slashes), keeping a trailing
// slash: "/a/./b/../c//" -> "/a/c/".
std::string NormalizePath(absl::string_view path) {
  std::vector<absl::string_view> kept;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == absl::string_view::npos) end = path.size();
    const absl::string_view segment = path.substr(start, end - start);
    if (segment == "..") {
      if (!kept.empty()) kept.pop_back();
    } else if (!segment.empty() && segment != ".") {
      kept.push_back(segment);
    }
    start = end + 1;
  }
  std::string out = "/" + absl::StrJoin(kept, "/");
  const bool trailing = path.size() > 1 && path.back() == '/';
  const bool dot_end = absl::EndsWith(path, "/.") || absl::EndsWith(path, "/..");
  if ((trailing || dot_end) && out.size() > 1) out += '/';
  return out;
}

// Trims and collapses runs of spaces, as the canonical header value wants.
std::string CanonicalHeaderValue(absl::string_view value) {
  std::string out;
  bool space = false;
  for (char c : absl::StripAsciiWhitespace(value)) {
    if (c == ' ' || c == '\t') {
      space = true;
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

bool IsTokenChar(unsigned char c) {
  return absl::ascii_isalnum(c) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsAmzDate(absl::string_view d) {
  if (d.size() != 16 || d[8] != 'T' || d[15] != 'Z') return false;
  for (size_t i = 0; i < 15; ++i) {
    if (i != 8 && !absl::ascii_isdigit(static_cast<unsigned char>(d[i]))) return false;
  }
  return true;
}

}  // namespace

std::string UriEncode(absl::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (IsUnreserved(c) || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string AmzDate(int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm = {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

absl::StatusOr<SigV4Signature> SignV4(const SigV4Request& request,
                                      const SigV4Credentials& credentials,
                                      const SigV4Options& options, absl::string_view amz_date) {
  if (!IsAmzDate(amz_date)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SigV4 date '", amz_date, "' is not YYYYMMDDTHHMMSSZ"));
  }
  if (request.method.empty()) return absl::InvalidArgumentError("SigV4: empty method");
  if (request.path.empty() || request.path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("SigV4: path '", request.path.substr(0, 100), "' does not start with '/'"));
  }
  if (credentials.access_key_id.empty() || credentials.secret_access_key.empty()) {
    return absl::InvalidArgumentError("SigV4: empty access key id or secret access key");
  }
  if (options.region.empty() || options.service.empty()) {
    return absl::InvalidArgumentError("SigV4: empty region or service");
  }

  // Headers: lowercase names, sorted; values trimmed, repeats joined with ','.
  std::map<std::string, std::string> headers;
  for (const auto& [name, value] : request.headers) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
          return IsTokenChar(static_cast<unsigned char>(c));
        })) {
      return absl::InvalidArgumentError(
          absl::StrCat("SigV4: header name '", name.substr(0, 100), "' is not an HTTP token"));
    }
    std::string& slot = headers[absl::AsciiStrToLower(name)];
    if (!slot.empty()) slot += ',';
    slot += CanonicalHeaderValue(value);
  }
  std::string canonical_headers;
  std::vector<absl::string_view> names;
  for (const auto& [name, value] : headers) {
    absl::StrAppend(&canonical_headers, name, ":", value, "\n");
    names.push_back(name);
  }

  // Query: each name and value encoded, sorted by name then value.
  std::vector<std::pair<std::string, std::string>> query;
  for (const auto& [name, value] : request.query) {
    query.emplace_back(UriEncode(name, false), UriEncode(value, false));
  }
  std::sort(query.begin(), query.end());
  std::vector<std::string> pairs;
  for (const auto& [name, value] : query) pairs.push_back(absl::StrCat(name, "=", value));

  const std::string path = options.normalize_path ? NormalizePath(request.path) : request.path;
  SigV4Signature out;
  out.signed_headers = absl::StrJoin(names, ";");
  out.canonical_request =
      absl::StrCat(request.method, "\n", UriEncode(path, true), "\n", absl::StrJoin(pairs, "&"),
                   "\n", canonical_headers, "\n", out.signed_headers, "\n", request.payload_sha256);

  const absl::string_view date = amz_date.substr(0, 8);
  const std::string scope =
      absl::StrCat(date, "/", options.region, "/", options.service, "/aws4_request");
  CTXMEM_ASSIGN_OR_RETURN(const std::string request_hash, Sha256Hex(out.canonical_request));
  out.string_to_sign = absl::StrCat(kAlgorithm, "\n", amz_date, "\n", scope, "\n", request_hash);

  CTXMEM_ASSIGN_OR_RETURN(std::string key,
                          HmacSha256(absl::StrCat("AWS4", credentials.secret_access_key), date));
  CTXMEM_ASSIGN_OR_RETURN(key, HmacSha256(key, options.region));
  CTXMEM_ASSIGN_OR_RETURN(key, HmacSha256(key, options.service));
  CTXMEM_ASSIGN_OR_RETURN(key, HmacSha256(key, "aws4_request"));
  CTXMEM_ASSIGN_OR_RETURN(const std::string signature, HmacSha256(key, out.string_to_sign));
  out.signature = ToHex(reinterpret_cast<const uint8_t*>(signature.data()), signature.size());
  out.authorization =
      absl::StrCat(kAlgorithm, " Credential=", credentials.access_key_id, "/", scope,
                   ", SignedHeaders=", out.signed_headers, ", Signature=", out.signature);
  return out;
}

}  // namespace ctxmem::blob
