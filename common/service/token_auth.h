#pragma once
// TokenAuth: bearer-token authentication for both servers. A tokens file maps each token to the
// tenant it acts for; a request names its token in the "authorization: Bearer <token>"
// metadata. Memories belong to tenants (FileBlobStore owners), so the tenant is what every
// handler passes on. With auth disabled every request acts for kDefaultTenant.
// Thread-safety: const methods only after construction.
//
// Tokens file: one "<token> <tenant>" per line; blank lines and lines starting with '#' are
// skipped. Tokens are 16..512 printable ASCII characters without spaces, tenants 1..64
// characters of [0-9A-Za-z_.-]. Only SHA-256 digests of the tokens are kept in memory, and a
// lookup hashes the presented token, so comparison time does not depend on how close a guess is.

#include <absl/container/flat_hash_map.h>
#include <absl/status/statusor.h>
#include <absl/strings/string_view.h>
#include <grpcpp/server_context.h>

#include <string>

namespace ctxmem::service {

inline constexpr absl::string_view kDefaultTenant = "default";

class TokenAuth {
 public:
  // Auth disabled: every request is kDefaultTenant.
  static TokenAuth Disabled();
  // InvalidArgument naming the line for a malformed line, a duplicate token, or an empty file;
  // NotFound / Internal naming the path on I/O errors.
  static absl::StatusOr<TokenAuth> LoadFile(const std::string& path);
  static absl::StatusOr<TokenAuth> Parse(absl::string_view text);

  bool enabled() const { return enabled_; }

  // The tenant of a request's "authorization" metadata value ("Bearer <token>"), or
  // Unauthenticated ("missing bearer token" / "unknown token"; never says which tokens exist).
  absl::StatusOr<std::string> Authenticate(absl::string_view authorization_header) const;
  // Reads the header from the call's client metadata.
  absl::StatusOr<std::string> Authenticate(const grpc::ServerContextBase& context) const;

 private:
  TokenAuth() = default;

  bool enabled_ = false;
  absl::flat_hash_map<std::string, std::string> tenant_by_digest_;  // sha256(token) -> tenant
};

// Auth may be off only for servers that listen on loopback (127.0.0.0/8, [::1], localhost)
// or when the operator says so explicitly (`allow_insecure_remote`). FailedPrecondition with
// the address and the flags to use otherwise.
absl::Status CheckAuthPolicy(absl::string_view listen_address, bool auth_enabled,
                             bool allow_insecure_remote);

// True for "127.x.y.z:port", "localhost:port", "[::1]:port".
bool IsLoopbackAddress(absl::string_view listen_address);

}  // namespace ctxmem::service
