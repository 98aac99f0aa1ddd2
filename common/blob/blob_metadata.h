#pragma once
// BlobMetadata: what a memory blob says about itself, stored as string entries of the
// safetensors "__metadata__" object (docs/blob_format.md), and the tensor naming scheme.
// Thread-safety: plain value type; the free functions are thread-safe.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/blob/safetensors_writer.h"
#include "common/weights/safetensors_file.h"

namespace ctxmem::blob {

// Format versions this build reads: 1 (float K/V, int8_per_channel) and 2 (adds the KIVI
// quantizations and I32 src). A writer uses the lowest version that describes its blob, so
// readers of version 1 keep reading every float blob; a reader refuses other versions with
// FailedPrecondition (never DataLoss, so a newer blob is not quarantined by an older reader).
inline constexpr int64_t kBlobFormatVersion = 2;     // the highest version read and written
inline constexpr int64_t kMinBlobFormatVersion = 1;  // the lowest version read
inline constexpr absl::string_view kBlobMagic = "ctxmem-memory-blob";

// Metadata keys. The first three are always the first entries of "__metadata__", in this
// order, so the checksums sit at fixed byte offsets (see kBlobHeaderPrefix in memory_blob.h).
inline constexpr absl::string_view kKeyMagic = "ctxmem.magic";                   // kBlobMagic
inline constexpr absl::string_view kKeyHeaderSha256 = "ctxmem.header_sha256";    // 64 hex
inline constexpr absl::string_view kKeyDataSha256 = "ctxmem.data_sha256";        // 64 hex
inline constexpr absl::string_view kKeyFormatVersion = "ctxmem.format_version";  // "1"
inline constexpr absl::string_view kKeyMemoryId = "ctxmem.memory_id";
inline constexpr absl::string_view kKeyModelFingerprint = "ctxmem.model_fingerprint";
inline constexpr absl::string_view kKeyTokenizerFingerprint = "ctxmem.tokenizer_fingerprint";
inline constexpr absl::string_view kKeyCompressionConfig = "ctxmem.compression_config";
inline constexpr absl::string_view kKeyNOriginalTokens = "ctxmem.n_original_tokens";
inline constexpr absl::string_view kKeyNSinks = "ctxmem.n_sinks";
inline constexpr absl::string_view kKeyNKept = "ctxmem.n_kept";  // JSON array, one per layer
inline constexpr absl::string_view kKeyKvDtype = "ctxmem.kv_dtype";
inline constexpr absl::string_view kKeyQuantization = "ctxmem.quantization";
inline constexpr absl::string_view kKeyCreatedUnixMs = "ctxmem.created_unix_ms";
// Optional keys, written only when set (version 1 readers ignore unknown ctxmem. keys).
inline constexpr absl::string_view kKeyKvGroupSize = "ctxmem.kv_group_size";  // KIVI only
inline constexpr absl::string_view kKeyAppendState = "ctxmem.append_state";   // JSON object
// "fused": the entries after the sinks are synthetic (a fuser, spec §7): their src is the newest
// token each summarises, not a token they are. Absent = a subset of the input's tokens.
inline constexpr absl::string_view kKeyEntries = "ctxmem.entries";
inline constexpr absl::string_view kReservedKeyPrefix = "ctxmem.";

// Bounds on values read from a blob (metadata is untrusted until it is checked).
inline constexpr int64_t kMaxBlobLayers = 4096;

// How K/V are stored (rule 37: one name table).
enum class BlobQuantization {
  kNone,            // layers.{i}.k/v hold kv_dtype values (F32, F16 or BF16)
  kInt8PerChannel,  // layers.{i}.k/v are I8; real = int8 * layers.{i}.{k,v}_scale (F32)
  // Version 2, KIVI (docs/blob_format.md "Quantized KV"): layers.{i}.k/v are U8 codes,
  // real = code * scale + zero with F16 layers.{i}.{k,v}_{scale,zero}; keys per channel
  // (groups of kv_group_size tokens), values per token (groups of kv_group_size channels).
  kKiviInt8,  // one code per byte
  kKiviInt4,  // two codes per byte along head_dim, even channel in the low nibble
};
bool IsKivi(BlobQuantization quantization);
absl::StatusOr<BlobQuantization> ParseBlobQuantization(std::string_view name);  // "none", ...
std::string_view BlobQuantizationName(BlobQuantization quantization);

struct BlobMetadata {
  // The lowest version that describes the blob: 1, or 2 with a KIVI quantization (EncodeMemory).
  int64_t format_version = kMinBlobFormatVersion;
  std::string memory_id;              // hex id from blob_id.h; "" = not content-addressed
  std::string model_fingerprint;      // e.g. FingerprintFiles() output; non-empty
  std::string tokenizer_fingerprint;  // "" = none
  std::string compression_config;     // the full config as a JSON object (CanonicalJson)
  int64_t n_original_tokens = 0;      // tokens of the source the memory was made from; >= 0
  int64_t n_sinks = 0;                // entries [0, n_sinks) of every head are tokens 0..; >= 0
  std::vector<int64_t> n_kept;        // per layer: entries per kv head; size() = n_layers
  weights::StDtype kv_dtype = weights::StDtype::kBF16;  // F32/F16/BF16, or I8 when quantized
  BlobQuantization quantization = BlobQuantization::kNone;
  int64_t created_unix_ms = 0;  // wall clock when sealed, ms since the Unix epoch; 0 = unset
  int64_t kv_group_size = 0;    // KIVI group size, >= 1 with a KIVI quantization; else 0
  // What continuing the memory needs (compress::AppendState::ToJson()); "" = not appendable.
  std::string append_state;
  bool fused_entries = false;  // kKeyEntries = "fused"
  // Free-form entries (e.g. "x.client_label"); keys must not start with "ctxmem.".
  std::map<std::string, std::string> extra;

  int64_t n_layers() const { return static_cast<int64_t>(n_kept.size()); }

  // InvalidArgument naming the field and value: unsupported version, empty model fingerprint,
  // config not a JSON object, negative counts, more than kMaxBlobLayers layers, n_sinks above
  // a layer's n_kept, kv_dtype not matching the quantization, a reserved extra key.
  absl::Status Validate() const;
};

bool operator==(const BlobMetadata& a, const BlobMetadata& b);

// The metadata entries in blob order (the three fixed keys first, checksums as 64 '0's, then
// the other ctxmem keys in the order declared above, then `extra` sorted by key).
// Call Validate() first.
MetadataEntries ToMetadataEntries(const BlobMetadata& metadata);

// Reads the entries of a blob header. The format version is checked first: a missing or
// malformed one is DataLoss, an unknown one FailedPrecondition naming it and ours. Any other
// missing or malformed entry is DataLoss naming the key and value.
absl::StatusOr<BlobMetadata> ParseBlobMetadata(const std::map<std::string, std::string>& entries);

// Tensor names of layer `layer`: "layers.{layer}.{k,v,src,k_scale,v_scale}".
std::string KeyTensorName(int64_t layer);         // [n_kv_heads, n_kept, head_dim], pre-RoPE
std::string ValueTensorName(int64_t layer);       // [n_kv_heads, n_kept, head_dim_v]
std::string SrcTensorName(int64_t layer);         // [..., n_kept] I64 stream indices
std::string KeyScaleTensorName(int64_t layer);    // [n_kv_heads, 1, head_dim] F32, int8 only
std::string ValueScaleTensorName(int64_t layer);  // [n_kv_heads, 1, head_dim_v] F32, int8 only
// KIVI zero points (and, with the scale names above, F16 scales); shapes in blob_format.md.
std::string KeyZeroTensorName(int64_t layer);
std::string ValueZeroTensorName(int64_t layer);
// Append state: "layers.{i}.rank" [n_kv_heads, n_kept] F32 (when the state has ranks) and the
// DOUBLE_COMPRESS hidden store "hidden.{i}.{k,v,src,rank}".
std::string RankTensorName(int64_t layer);
std::string HiddenTensorName(int64_t layer, std::string_view what);

}  // namespace ctxmem::blob
