#include "common/service/token_auth.h"

#include <absl/strings/ascii.h>
#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_split.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "common/blob/sha256.h"
#include "common/status.h"

namespace ctxmem::service {
namespace {

constexpr size_t kMinTokenLen = 16;
constexpr size_t kMaxTokenLen = 512;
constexpr size_t kMaxTenantLen = 64;

absl::StatusOr<std::string> Digest(absl::string_view token) { return blob::Sha256Hex(token); }

bool ValidToken(absl::string_view token) {
  if (token.size() < kMinTokenLen || token.size() > kMaxTokenLen) return false;
  for (char c : token) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

bool ValidTenant(absl::string_view tenant) {
  if (tenant.empty() || tenant.size() > kMaxTenantLen) return false;
  for (char c : tenant) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

}  // namespace

TokenAuth TokenAuth::Disabled() { return TokenAuth(); }

absl::StatusOr<TokenAuth> TokenAuth::LoadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open tokens file ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::InternalError(absl::StrCat("cannot read tokens file ", path));
  absl::StatusOr<TokenAuth> auth = Parse(buffer.str());
  if (!auth.ok()) {
    return absl::Status(auth.status().code(),
                        absl::StrCat("tokens file ", path, ": ", auth.status().message()));
  }
  return auth;
}

absl::StatusOr<TokenAuth> TokenAuth::Parse(absl::string_view text) {
  TokenAuth auth;
  auth.enabled_ = true;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_no, ": expected \"<token> <tenant>\""));
    }
    if (!ValidToken(fields[0])) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": a token must be ",
                                                     kMinTokenLen, "..", kMaxTokenLen,
                                                     " printable ASCII characters without spaces"));
    }
    if (!ValidTenant(fields[1])) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": tenant must be 1..",
                                                     kMaxTenantLen,
                                                     " characters of [0-9A-Za-z_.-]"));
    }
    CTXMEM_ASSIGN_OR_RETURN(std::string digest, Digest(fields[0]));
    if (!auth.tenant_by_digest_.emplace(std::move(digest), std::string(fields[1])).second) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": duplicate token"));
    }
  }
  if (auth.tenant_by_digest_.empty()) {
    return absl::InvalidArgumentError("no tokens (expected lines \"<token> <tenant>\")");
  }
  return auth;
}

absl::StatusOr<std::string> TokenAuth::Authenticate(absl::string_view authorization_header) const {
  if (!enabled_) return std::string(kDefaultTenant);
  absl::string_view value = absl::StripAsciiWhitespace(authorization_header);
  constexpr absl::string_view kBearer = "bearer ";
  if (value.size() <= kBearer.size() || !absl::StartsWithIgnoreCase(value, kBearer)) {
    return absl::UnauthenticatedError(
        "missing bearer token: send metadata \"authorization: Bearer <token>\"");
  }
  absl::string_view token = absl::StripLeadingAsciiWhitespace(value.substr(kBearer.size()));
  CTXMEM_ASSIGN_OR_RETURN(std::string digest, Digest(token));
  auto it = tenant_by_digest_.find(digest);
  if (it == tenant_by_digest_.end()) return absl::UnauthenticatedError("unknown bearer token");
  return it->second;
}

absl::StatusOr<std::string> TokenAuth::Authenticate(const grpc::ServerContextBase& context) const {
  if (!enabled_) return std::string(kDefaultTenant);
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return Authenticate(absl::string_view());
  return Authenticate(absl::string_view(it->second.data(), it->second.size()));
}

bool IsLoopbackAddress(absl::string_view listen_address) {
  absl::string_view host = listen_address;
  if (absl::StartsWith(host, "[")) {
    size_t close = host.find(']');
    if (close == absl::string_view::npos) return false;
    return host.substr(1, close - 1) == "::1";
  }
  size_t colon = host.rfind(':');
  if (colon != absl::string_view::npos) host = host.substr(0, colon);
  return host == "localhost" || absl::StartsWith(host, "127.");
}

absl::Status CheckAuthPolicy(absl::string_view listen_address, bool auth_enabled,
                             bool allow_insecure_remote) {
  if (auth_enabled || allow_insecure_remote || IsLoopbackAddress(listen_address)) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      absl::StrCat("refusing to listen on ", listen_address,
                   " without authentication: give --tokens-file FILE, listen on loopback, or pass "
                   "--allow-insecure-remote explicitly"));
}

}  // namespace ctxmem::service
