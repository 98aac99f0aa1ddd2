#pragma once
// Sha256: incremental SHA-256 over OpenSSL EVP, the one digest of the blob module (blob
// checksums, memory ids, fingerprints). Hex output is lowercase, 64 characters.
// Thread-safety: not thread-safe (one hashing stream per object); the free functions are.

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX, kept out of this header

namespace ctxmem::blob {

inline constexpr size_t kSha256Bytes = 32;     // raw digest
inline constexpr size_t kSha256HexChars = 64;  // lowercase hex digest

using Sha256Digest = std::array<uint8_t, kSha256Bytes>;

class Sha256 {
 public:
  // Internal when OpenSSL cannot set up a SHA-256 context (out of memory, broken provider).
  static absl::StatusOr<Sha256> Create();

  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  ~Sha256();

  // Feeds bytes. Internal if OpenSSL reports a failure; the object is then unusable.
  absl::Status Update(absl::string_view bytes);
  absl::Status Update(const void* data, size_t n_bytes);
  // Appends `value` as 8 little-endian bytes (length prefixes of hashed layouts).
  absl::Status UpdateU64(uint64_t value);
  // Ends the stream; any later call returns FailedPrecondition.
  absl::StatusOr<Sha256Digest> Finish();
  absl::StatusOr<std::string> FinishHex();

 private:
  struct CtxDeleter {
    void operator()(evp_md_ctx_st* ctx) const;
  };
  explicit Sha256(std::unique_ptr<evp_md_ctx_st, CtxDeleter> ctx) : ctx_(std::move(ctx)) {}

  std::unique_ptr<evp_md_ctx_st, CtxDeleter> ctx_;  // nullptr after Finish()
};

// One-shot digest of `bytes`, lowercase hex.
absl::StatusOr<std::string> Sha256Hex(absl::string_view bytes);

// Lowercase hex of raw bytes.
std::string ToHex(const uint8_t* data, size_t n_bytes);
// True for exactly kSha256HexChars characters of [0-9a-f].
bool IsSha256Hex(absl::string_view text);

}  // namespace ctxmem::blob
