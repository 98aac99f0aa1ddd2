#pragma once
// Content ids of memories and fingerprints of the things a memory depends on (DESIGN.md
// "Memory blob"): the same model, config and tokens always give the same memory_id, so the
// same input compressed twice is stored once.
// Thread-safety: free functions are thread-safe; MemoryIdBuilder is not (one per stream).
//
// memory_id = lowercase hex SHA-256 of these bytes (integers little-endian):
//   "ctxmem.memory_id.v2" 0x00          20 bytes, names this layout
//   u64 len(tenant), then the tenant's bytes (so an id never reveals another tenant's memory)
//   u64 len(model_fingerprint), then the model fingerprint's bytes
//   u64 len(config), then CanonicalJson(compression config)'s bytes
//   i32 per token id, in stream order (4 bytes each)
//   u64 n_tokens
// The token count comes last so that ids can be hashed while tokens stream in. (v1 was the
// same layout without the tenant.)

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/blob/sha256.h"

namespace ctxmem::blob {

inline constexpr absl::string_view kMemoryIdDomain{"ctxmem.memory_id.v2\0", 20};
inline constexpr int kMaxJsonDepth = 64;  // nesting bound for configs we canonicalize

// The canonical form of a JSON text: parsed and re-serialized compactly with object keys
// sorted (byte order) and numbers in their shortest round-trip form, so equal configs give
// equal bytes whatever their spacing or key order. InvalidArgument for text that is not JSON
// (or not valid UTF-8, or nested deeper than kMaxJsonDepth).
absl::StatusOr<std::string> CanonicalJson(absl::string_view json);

// Hashes a memory id incrementally, for token streams of unknown length.
class MemoryIdBuilder {
 public:
  // InvalidArgument if `compression_config` is not a JSON object, or the tenant or the
  // fingerprint is empty.
  static absl::StatusOr<MemoryIdBuilder> Create(absl::string_view tenant,
                                                absl::string_view model_fingerprint,
                                                absl::string_view compression_config);

  absl::Status AddTokens(std::span<const int32_t> tokens);
  // The id (64 hex). FailedPrecondition if called twice.
  absl::StatusOr<std::string> Finish();

  uint64_t n_tokens() const { return n_tokens_; }
  const std::string& canonical_config() const { return canonical_config_; }

 private:
  MemoryIdBuilder(Sha256 sha, std::string canonical_config)
      : sha_(std::move(sha)), canonical_config_(std::move(canonical_config)) {}

  Sha256 sha_;
  std::string canonical_config_;
  uint64_t n_tokens_ = 0;
};

// One-shot MemoryIdBuilder.
absl::StatusOr<std::string> ComputeMemoryId(absl::string_view tenant,
                                            absl::string_view model_fingerprint,
                                            absl::string_view compression_config,
                                            std::span<const int32_t> tokens);

// True for a well-formed memory id: 64 characters of [0-9a-f].
bool IsMemoryId(absl::string_view id);

// "sha256:<hex>" of a file's contents, read in 1 MiB pieces. NotFound / Internal naming the
// path on I/O errors.
absl::StatusOr<std::string> FingerprintFile(const std::string& path);
// "sha256:<hex>" of several files, e.g. a checkpoint's config.json and shards, in the given
// order: SHA-256 over, per file, u64 len(base name), the base name, and the 32-byte SHA-256 of
// its contents. A renamed or reordered file set gives another fingerprint.
absl::StatusOr<std::string> FingerprintFiles(const std::vector<std::string>& paths);
// "sha256:<hex>" of bytes, e.g. a tokenizer's serialized vocabulary.
absl::StatusOr<std::string> FingerprintBytes(absl::string_view bytes);

}  // namespace ctxmem::blob
