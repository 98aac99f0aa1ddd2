#include "common/blob/blob_id.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace ctxmem::blob {
namespace {

constexpr size_t kReadChunkBytes = 1 << 20;

// Nesting depth of arrays/objects outside strings; the parser runs only on bounded input.
int JsonDepth(absl::string_view json) {
  int depth = 0;
  int max_depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : json) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

// Digest of one file's contents, streamed.
absl::StatusOr<Sha256Digest> HashFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    std::string message = absl::StrCat("cannot open ", path, ": ", std::strerror(err));
    if (err == ENOENT || err == ENOTDIR) return absl::NotFoundError(message);
    return absl::InternalError(message);
  }
  absl::StatusOr<Sha256> sha = Sha256::Create();
  std::string buffer(kReadChunkBytes, '\0');
  absl::Status status = sha.status();
  while (status.ok()) {
    const ssize_t n = read(fd, buffer.data(), buffer.size());
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      status = absl::InternalError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
      break;
    }
    status = sha->Update(buffer.data(), static_cast<size_t>(n));
  }
  close(fd);
  CTXMEM_RETURN_IF_ERROR(status);
  return sha->Finish();
}

absl::StatusOr<nlohmann::json> ParseBounded(absl::string_view json) {
  const int depth = JsonDepth(json);
  if (depth > kMaxJsonDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat("JSON nests ", depth, " levels deep; the limit is ", kMaxJsonDepth));
  }
  nlohmann::json value =
      nlohmann::json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not valid JSON (or not UTF-8): '", json.substr(0, 200), "'"));
  }
  return value;
}

// Compact, keys sorted (nlohmann::json objects are std::maps), shortest round-trip numbers.
std::string Dump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

absl::StatusOr<std::string> CanonicalJson(absl::string_view json) {
  CTXMEM_ASSIGN_OR_RETURN(const nlohmann::json value, ParseBounded(json));
  return Dump(value);
}

absl::StatusOr<MemoryIdBuilder> MemoryIdBuilder::Create(absl::string_view tenant,
                                                        absl::string_view model_fingerprint,
                                                        absl::string_view compression_config) {
  if (tenant.empty()) return absl::InvalidArgumentError("memory id needs a non-empty tenant");
  if (model_fingerprint.empty()) {
    return absl::InvalidArgumentError("memory id needs a non-empty model fingerprint");
  }
  CTXMEM_ASSIGN_OR_RETURN(const nlohmann::json parsed, ParseBounded(compression_config));
  if (!parsed.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("compression config is not a JSON object: '",
                                                   compression_config.substr(0, 200), "'"));
  }
  std::string config = Dump(parsed);
  CTXMEM_ASSIGN_OR_RETURN(Sha256 sha, Sha256::Create());
  CTXMEM_RETURN_IF_ERROR(sha.Update(kMemoryIdDomain));
  CTXMEM_RETURN_IF_ERROR(sha.UpdateU64(tenant.size()));
  CTXMEM_RETURN_IF_ERROR(sha.Update(tenant));
  CTXMEM_RETURN_IF_ERROR(sha.UpdateU64(model_fingerprint.size()));
  CTXMEM_RETURN_IF_ERROR(sha.Update(model_fingerprint));
  CTXMEM_RETURN_IF_ERROR(sha.UpdateU64(config.size()));
  CTXMEM_RETURN_IF_ERROR(sha.Update(config));
  return MemoryIdBuilder(std::move(sha), std::move(config));
}

absl::Status MemoryIdBuilder::AddTokens(std::span<const int32_t> tokens) {
  // Serialize explicitly as little-endian so ids do not depend on the host.
  uint8_t buffer[4096];
  size_t i = 0;
  while (i < tokens.size()) {
    size_t n = 0;
    for (; i < tokens.size() && n + 4 <= sizeof(buffer); ++i, n += 4) {
      const uint32_t u = static_cast<uint32_t>(tokens[i]);
      buffer[n] = static_cast<uint8_t>(u);
      buffer[n + 1] = static_cast<uint8_t>(u >> 8);
      buffer[n + 2] = static_cast<uint8_t>(u >> 16);
      buffer[n + 3] = static_cast<uint8_t>(u >> 24);
    }
    CTXMEM_RETURN_IF_ERROR(sha_.Update(buffer, n));
  }
  n_tokens_ += tokens.size();
  return absl::OkStatus();
}

absl::StatusOr<std::string> MemoryIdBuilder::Finish() {
  CTXMEM_RETURN_IF_ERROR(sha_.UpdateU64(n_tokens_));
  return sha_.FinishHex();
}

absl::StatusOr<std::string> ComputeMemoryId(absl::string_view tenant,
                                            absl::string_view model_fingerprint,
                                            absl::string_view compression_config,
                                            std::span<const int32_t> tokens) {
  CTXMEM_ASSIGN_OR_RETURN(MemoryIdBuilder builder,
                          MemoryIdBuilder::Create(tenant, model_fingerprint, compression_config));
  CTXMEM_RETURN_IF_ERROR(builder.AddTokens(tokens));
  return builder.Finish();
}

bool IsMemoryId(absl::string_view id) { return IsSha256Hex(id); }

absl::StatusOr<std::string> FingerprintFile(const std::string& path) {
  CTXMEM_ASSIGN_OR_RETURN(const Sha256Digest digest, HashFile(path));
  return absl::StrCat("sha256:", ToHex(digest.data(), digest.size()));
}

absl::StatusOr<std::string> FingerprintFiles(const std::vector<std::string>& paths) {
  CTXMEM_ASSIGN_OR_RETURN(Sha256 sha, Sha256::Create());
  for (const std::string& path : paths) {
    CTXMEM_ASSIGN_OR_RETURN(const Sha256Digest digest, HashFile(path));
    const std::string base = BaseName(path);
    CTXMEM_RETURN_IF_ERROR(sha.UpdateU64(base.size()));
    CTXMEM_RETURN_IF_ERROR(sha.Update(base));
    CTXMEM_RETURN_IF_ERROR(sha.Update(digest.data(), digest.size()));
  }
  CTXMEM_ASSIGN_OR_RETURN(const std::string hex, sha.FinishHex());
  return absl::StrCat("sha256:", hex);
}

absl::StatusOr<std::string> FingerprintBytes(absl::string_view bytes) {
  CTXMEM_ASSIGN_OR_RETURN(const std::string hex, Sha256Hex(bytes));
  return absl::StrCat("sha256:", hex);
}

}  // namespace ctxmem::blob
