#pragma once
// Test-only helpers for common/blob tests: small valid memory blobs whose values follow a pattern
// tests/reference/check_blob_python.py can check ("x.test_pattern" = "mod17"); the temp folder
// and file helpers come from tests/unit/test_files.h. Not thread-safe.

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/blob/blob_metadata.h"
#include "common/blob/memory_blob.h"
#include "common/blob/safetensors_writer.h"
#include "common/weights/float16.h"
#include "tests/unit/test_files.h"

namespace ctxmem::blob::testing {

using ctxmem::testing::ListFiles;
using ctxmem::testing::ReadBytes;
using ctxmem::testing::WriteBytes;

// Temp folders of blob tests are named ctxmem_blob_*.
class TempDir : public ctxmem::testing::TempDir {
 public:
  TempDir() : ctxmem::testing::TempDir("ctxmem_blob") {}
};

// The "mod17" pattern: element j of a K/V tensor with salt s holds ((j + s) % 17) - 8, exact in
// every dtype; src holds j; scales hold 0.25 * (1 + j % 4).
inline float PatternValue(int64_t j, int64_t salt) {
  return static_cast<float>((j + salt) % 17) - 8.0f;
}

// Element bytes of `n` pattern values in `dtype`.
inline std::vector<uint8_t> PatternBytes(weights::StDtype dtype, int64_t n, int64_t salt) {
  const int64_t width = weights::StDtypeBytes(dtype);
  std::vector<uint8_t> out(static_cast<size_t>(n * width));
  for (int64_t j = 0; j < n; ++j) {
    const float f = PatternValue(j, salt);
    uint8_t* dst = out.data() + j * width;
    switch (dtype) {
      case weights::StDtype::kF32:
        std::memcpy(dst, &f, 4);
        break;
      case weights::StDtype::kF16: {
        const uint16_t h = weights::FloatToHalf(f);
        std::memcpy(dst, &h, 2);
        break;
      }
      case weights::StDtype::kBF16: {
        const uint16_t b = weights::FloatToBFloat16(f);
        std::memcpy(dst, &b, 2);
        break;
      }
      case weights::StDtype::kF64: {
        const double d = f;
        std::memcpy(dst, &d, 8);
        break;
      }
      case weights::StDtype::kI64: {
        const int64_t v = static_cast<int64_t>(f);
        std::memcpy(dst, &v, 8);
        break;
      }
      case weights::StDtype::kI32: {
        const int32_t v = static_cast<int32_t>(f);
        std::memcpy(dst, &v, 4);
        break;
      }
      case weights::StDtype::kI16: {
        const int16_t v = static_cast<int16_t>(f);
        std::memcpy(dst, &v, 2);
        break;
      }
      case weights::StDtype::kI8:
        dst[0] = static_cast<uint8_t>(static_cast<int8_t>(f));
        break;
      case weights::StDtype::kU8:
        dst[0] = static_cast<uint8_t>(f + 8.0f);
        break;
      case weights::StDtype::kBool:
        dst[0] = (j + salt) % 2;
        break;
    }
  }
  return out;
}

// A small valid blob: n_layers layers of k/v [n_kv_heads=2, n_kept, head_dim=4] and src
// [2, n_kept], plus F32 scales when kv_dtype is I8. Owns its tensor bytes; keep it alive while
// `tensors` are used.
struct TestBlob {
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<RawTensor> tensors;
  BlobMetadata metadata;
};

inline constexpr int64_t kTestKvHeads = 2;
inline constexpr int64_t kTestHeadDim = 4;

inline TestBlob MakeTestBlob(weights::StDtype kv_dtype = weights::StDtype::kBF16,
                             int64_t n_layers = 2, int64_t n_kept = 3, int64_t salt = 0,
                             const std::string& memory_id = "") {
  using weights::StDtype;
  TestBlob blob;
  const bool int8 = kv_dtype == StDtype::kI8;
  blob.buffers.reserve(static_cast<size_t>(5 * n_layers));
  auto add = [&blob](std::string name, StDtype dtype, std::vector<int64_t> shape,
                     std::vector<uint8_t> bytes) {
    blob.buffers.push_back(std::move(bytes));
    blob.tensors.push_back({std::move(name), dtype, std::move(shape), blob.buffers.back().data()});
  };
  const int64_t n_kv = kTestKvHeads * n_kept * kTestHeadDim;
  for (int64_t i = 0; i < n_layers; ++i) {
    add(KeyTensorName(i), kv_dtype, {kTestKvHeads, n_kept, kTestHeadDim},
        PatternBytes(kv_dtype, n_kv, salt + 2 * i));
    add(ValueTensorName(i), kv_dtype, {kTestKvHeads, n_kept, kTestHeadDim},
        PatternBytes(kv_dtype, n_kv, salt + 2 * i + 1));
    std::vector<uint8_t> src(static_cast<size_t>(8 * kTestKvHeads * n_kept));
    for (int64_t j = 0; j < kTestKvHeads * n_kept; ++j) std::memcpy(&src[8 * j], &j, 8);
    add(SrcTensorName(i), StDtype::kI64, {kTestKvHeads, n_kept}, std::move(src));
    if (int8) {
      for (const std::string& name : {KeyScaleTensorName(i), ValueScaleTensorName(i)}) {
        std::vector<uint8_t> scale(4 * kTestKvHeads * kTestHeadDim);
        for (int64_t j = 0; j < kTestKvHeads * kTestHeadDim; ++j) {
          const float s = 0.25f * static_cast<float>(1 + j % 4);
          std::memcpy(&scale[4 * j], &s, 4);
        }
        add(name, StDtype::kF32, {kTestKvHeads, 1, kTestHeadDim}, std::move(scale));
      }
    }
  }
  BlobMetadata& m = blob.metadata;
  m.memory_id = memory_id;
  m.model_fingerprint = "sha256:test-model";
  m.tokenizer_fingerprint = "sha256:test-tokenizer";
  m.compression_config = R"({"chunk_size":512,"memory_size":256,"pruner":"tova"})";
  m.n_original_tokens = 1000 + salt;
  m.n_sinks = 1;
  m.n_kept.assign(static_cast<size_t>(n_layers), n_kept);
  m.kv_dtype = kv_dtype;
  m.quantization = int8 ? BlobQuantization::kInt8PerChannel : BlobQuantization::kNone;
  m.created_unix_ms = 1'700'000'000'000;
  m.extra["x.test_pattern"] = "mod17";
  m.extra["x.test_salt"] = std::to_string(salt);
  return blob;
}

// The sealed bytes of MakeTestBlob(...); empty on failure (tests check).
inline std::string SealTestBlob(weights::StDtype kv_dtype = weights::StDtype::kBF16,
                                int64_t n_layers = 2, int64_t n_kept = 3, int64_t salt = 0,
                                const std::string& memory_id = "") {
  TestBlob blob = MakeTestBlob(kv_dtype, n_layers, n_kept, salt, memory_id);
  absl::StatusOr<std::string> bytes = SealBlob(blob.tensors, blob.metadata);
  return bytes.ok() ? *bytes : std::string();
}

}  // namespace ctxmem::blob::testing
