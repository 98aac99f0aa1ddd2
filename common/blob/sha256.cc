#include "common/blob/sha256.h"

#include <openssl/evp.h>

#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace ctxmem::blob {

void Sha256::CtxDeleter::operator()(evp_md_ctx_st* ctx) const { EVP_MD_CTX_free(ctx); }

absl::StatusOr<Sha256> Sha256::Create() {
  std::unique_ptr<evp_md_ctx_st, CtxDeleter> ctx(EVP_MD_CTX_new());
  if (ctx == nullptr) return absl::InternalError("EVP_MD_CTX_new failed (out of memory?)");
  if (EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return absl::InternalError("EVP_DigestInit_ex(SHA-256) failed");
  }
  return Sha256(std::move(ctx));
}

Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;
Sha256::~Sha256() = default;

absl::Status Sha256::Update(const void* data, size_t n_bytes) {
  if (ctx_ == nullptr) return absl::FailedPreconditionError("Sha256::Update after Finish");
  if (n_bytes == 0) return absl::OkStatus();
  if (EVP_DigestUpdate(ctx_.get(), data, n_bytes) != 1) {
    ctx_.reset();
    return absl::InternalError(absl::StrCat("EVP_DigestUpdate failed on ", n_bytes, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status Sha256::Update(absl::string_view bytes) { return Update(bytes.data(), bytes.size()); }

absl::Status Sha256::UpdateU64(uint64_t value) {
  uint8_t le[8];
  for (int i = 0; i < 8; ++i) le[i] = static_cast<uint8_t>(value >> (8 * i));
  return Update(le, sizeof(le));
}

absl::StatusOr<Sha256Digest> Sha256::Finish() {
  if (ctx_ == nullptr) return absl::FailedPreconditionError("Sha256::Finish called twice");
  Sha256Digest digest{};
  unsigned int n = 0;
  const int ok = EVP_DigestFinal_ex(ctx_.get(), digest.data(), &n);
  ctx_.reset();
  if (ok != 1 || n != kSha256Bytes) {
    return absl::InternalError(absl::StrCat("EVP_DigestFinal_ex failed (", n, " bytes)"));
  }
  return digest;
}

absl::StatusOr<std::string> Sha256::FinishHex() {
  CTXMEM_ASSIGN_OR_RETURN(const Sha256Digest digest, Finish());
  return ToHex(digest.data(), digest.size());
}

absl::StatusOr<std::string> Sha256Hex(absl::string_view bytes) {
  CTXMEM_ASSIGN_OR_RETURN(Sha256 sha, Sha256::Create());
  CTXMEM_RETURN_IF_ERROR(sha.Update(bytes));
  return sha.FinishHex();
}

std::string ToHex(const uint8_t* data, size_t n_bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex(2 * n_bytes, '0');
  for (size_t i = 0; i < n_bytes; ++i) {
    hex[2 * i] = kDigits[data[i] >> 4];
    hex[2 * i + 1] = kDigits[data[i] & 0xF];
  }
  return hex;
}

bool IsSha256Hex(absl::string_view text) {
  if (text.size() != kSha256HexChars) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace ctxmem::blob
