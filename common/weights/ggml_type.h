#pragma once
// ggml tensor element types as stored in GGUF files, their block layout and dequantization.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ctxmem::weights {

// Values are the on-disk ids of ggml's `enum ggml_type` (ggml.h); they must never change.
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kBF16 = 30,
};

// Block geometry of a type: `block_elems` values are stored in `block_bytes` bytes.
struct GgmlTypeTraits {
  std::string_view name;  // "q4_1"
  int64_t block_elems;    // values per block (1 for f32/f16/bf16)
  int64_t block_bytes;    // bytes per block
  bool dequantizable;     // DequantizeGgml supports it
};

// Traits of `type`; InvalidArgument naming the id for a type this build does not know.
absl::StatusOr<GgmlTypeTraits> GetGgmlTypeTraits(uint32_t type_id);

// Bytes taken by `n_elements` values of `type`. InvalidArgument when `n_elements` is not a
// multiple of the block size or the product overflows.
absl::StatusOr<uint64_t> GgmlByteSize(GgmlType type, int64_t n_elements);

// Dequantizes `n_elements` values of `type` stored at `src` (`src_bytes` long) into `dst`
// (room for n_elements floats). Fails (InvalidArgument) on an unsupported type or when
// src_bytes != GgmlByteSize(type, n_elements); `dst` is then unspecified.
absl::Status DequantizeGgml(GgmlType type, const uint8_t* src, uint64_t src_bytes,
                            int64_t n_elements, float* dst);

}  // namespace ctxmem::weights
