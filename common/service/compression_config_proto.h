#pragma once
// The API's CompressionConfig (proto, every field optional) resolved into the engine's
// compress::CompressionConfig plus the blob dtype, with the canonical JSON that goes into
// memory ids and blobs. Every error names the field, its value and the valid values.
// Thread-safety: free functions.

#include <absl/status/statusor.h>
#include <absl/strings/string_view.h>

#include <cstdint>
#include <string>

#include "common/compress/compression_config.h"
#include "common/compress/kv_format.h"
#include "common/weights/safetensors_file.h"
#include "ctxmem/v1/memory.pb.h"

namespace ctxmem::service {

// What a server allows beyond the engine's own checks.
struct CompressionLimits {
  std::string model_name;           // the server's model; config.model must be "" or this
  int64_t max_positions = 0;        // the model's trained window; 0 = unknown (not checked)
  int64_t max_chunk_size = 8192;    // C above this: InvalidArgument (peak memory grows with C)
  int64_t max_memory_size = 65536;  // M above this: InvalidArgument
};

struct ResolvedCompressionConfig {
  compress::CompressionConfig config;  // expected_length is always 0 (lengths are known)
  compress::KvFormat kv_format;        // how the blob stores K/V
  // CanonicalJson of every engine field plus "kv_dtype" (and "kv_group_size" when quantized):
  // what the memory id hashes and the blob's compression_config holds. Same config, same bytes.
  std::string canonical_json;
};

// Fills the defaults documented in memory.proto, parses the names, validates.
// InvalidArgument naming the field for bad values (unknown pruner lists the registry's names,
// unknown memory_type/schedule/position_mode/score_mode/kv_dtype list theirs; budgets that do
// not fit the model window name all three numbers); FailedPrecondition when config.model names
// another model than limits.model_name.
absl::StatusOr<ResolvedCompressionConfig> ResolveCompressionConfig(
    const ctxmem::v1::CompressionConfig& proto, const CompressionLimits& limits);

// The resolved config of a sealed blob from its stored canonical JSON (its compression_config),
// e.g. to continue it: the JSON's fields become an API config, which is resolved as above and
// must give the same canonical JSON back. DataLoss for JSON this build cannot read back
// exactly; InvalidArgument / FailedPrecondition as ResolveCompressionConfig (a server whose
// limits no longer admit the config).
absl::StatusOr<ResolvedCompressionConfig> ResolveStoredCompressionConfig(
    const std::string& canonical_json, const CompressionLimits& limits);

}  // namespace ctxmem::service
