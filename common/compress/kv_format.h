#pragma once
// KvFormat: how a memory's keys and values are stored in a blob: a float type (bf16, f16, f32)
// or KIVI-style asymmetric integer quantization (int8, int4) with a group size (docs/
// blob_format.md "Quantized KV"; Liu et al. 2024, "KIVI: A Tuning-Free Asymmetric 2bit
// Quantization for KV Cache"): keys per channel (each channel's min/max over groups of
// group_size tokens), values per token (each token's min/max over groups of group_size
// channels). Thread-safety: plain value type; the free functions are thread-safe.

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ctxmem::compress {

// The closed set of storage types (rule 37: one name table in the .cc).
enum class KvDtype { kBF16, kF16, kF32, kInt8, kInt4 };

// "bf16" | "f16" | "f32" | "int8" | "int4"; "" = bf16. InvalidArgument listing the names.
absl::StatusOr<KvDtype> ParseKvDtypeName(std::string_view name);
std::string_view KvDtypeLabel(KvDtype dtype);  // the name ParseKvDtypeName reads
int KvDtypeBits(KvDtype dtype);                // 16, 16, 32, 8, 4

inline constexpr int64_t kDefaultKvGroupSize = 64;
inline constexpr int64_t kMaxKvGroupSize = 4096;

struct KvFormat {
  KvDtype dtype = KvDtype::kBF16;
  // KIVI group: tokens per key group (per channel), channels per value group (per token;
  // clamped to head_dim). Only meaningful when quantized(); [1, kMaxKvGroupSize].
  int64_t group_size = kDefaultKvGroupSize;

  bool quantized() const { return dtype == KvDtype::kInt8 || dtype == KvDtype::kInt4; }
  // InvalidArgument naming group_size when it is out of [1, kMaxKvGroupSize].
  absl::Status Validate() const;
};

}  // namespace ctxmem::compress
