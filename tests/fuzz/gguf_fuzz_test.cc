// Robustness of GgufFile::Open on malformed files: truncations, random byte flips and hostile
// integer fields. Every case must end in a non-OK status or a file whose every tensor and key
// can be read; never a crash, an out-of-bounds read (ASan) or undefined behaviour (UBSan).

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/weights/float16.h"
#include "common/weights/gguf_file.h"
#include "tests/unit/weights/test_files.h"

namespace ctxmem::weights {
namespace {

using testing::GgufArrayBytes;
using testing::GgufWriter;
using testing::IntField;
using testing::TempDir;
using VT = GgufValueType;

// A small valid file with every value type, nested arrays and tensors of several types.
std::string SeedFile(std::vector<IntField>* fields, uint32_t alignment = 32) {
  GgufWriter w;
  if (alignment != 32) w.SetAlignment(alignment);
  w.AddString("general.architecture", "llama");
  w.AddScalar<uint32_t>("llama.block_count", VT::kUint32, 2);
  w.AddScalar<int8_t>("i8", VT::kInt8, -3);
  w.AddScalar<uint16_t>("u16", VT::kUint16, 7);
  w.AddScalar<int16_t>("i16", VT::kInt16, -7);
  w.AddScalar<int32_t>("i32", VT::kInt32, -70000);
  w.AddScalar<float>("f32", VT::kFloat32, 1e-5f);
  w.AddScalar<uint8_t>("bool", VT::kBool, 1);
  w.AddScalar<uint64_t>("u64", VT::kUint64, 1ull << 50);
  w.AddScalar<int64_t>("i64", VT::kInt64, -5);
  w.AddScalar<double>("f64", VT::kFloat64, 2.5);
  w.AddStringArray("tokenizer.ggml.tokens", {"<s>", "</s>", "a", "bc", "def"});
  w.AddArray<int32_t>("tokenizer.ggml.token_type", VT::kInt32, {3, 3, 1, 1, 1});
  w.AddArray<float>("scores", VT::kFloat32, {0.0f, -1.0f, -2.0f});
  std::string inner = GgufArrayBytes(VT::kUint8, 3, "xyz") + GgufArrayBytes(VT::kUint8, 0, "");
  w.AddRaw("nested", VT::kArray, GgufArrayBytes(VT::kArray, 2, inner));

  w.AddTensorF32("norm", {8}, {1, 2, 3, 4, 5, 6, 7, 8});
  std::string f16;
  for (int i = 0; i < 16; ++i) testing::Put<uint16_t>(&f16, FloatToHalf(0.125f * i));
  w.AddTensor("f16", GgmlType::kF16, {2, 8}, f16);
  std::mt19937 rng(7);
  auto random_bytes = [&](size_t n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(rng() & 0xFF);
    return s;
  };
  w.AddTensor("q4_1", GgmlType::kQ4_1, {2, 32}, random_bytes(40));
  w.AddTensor("q8_0", GgmlType::kQ8_0, {1, 64}, random_bytes(68));
  w.AddTensor("q6_k", GgmlType::kQ6_K, {1, 256}, random_bytes(210));
  w.AddTensor("q4_k", GgmlType::kQ4_K, {1, 256}, random_bytes(144));
  return w.Build(fields);
}

// Opens `bytes` from a file; when that succeeds, touches every key and every tensor.
class Harness {
 public:
  Harness() : path_(dir_.File("fuzz.gguf")) {}

  // Returns true when the file opened.
  bool Run(const std::string& bytes) {
    if (!testing::WriteBytes(path_, bytes)) {
      ADD_FAILURE() << "cannot write " << path_;
      return false;
    }
    absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(path_);
    if (!file.ok()) {
      EXPECT_FALSE(file.status().message().empty());
      return false;
    }
    Exercise(**file);
    return true;
  }

 private:
  void Exercise(const GgufFile& f) {
    int ok = 0;
    for (const std::string& key : f.keys()) {
      EXPECT_NE(f.Find(key), nullptr);
      ok += f.GetInt(key).ok() + f.GetFloat(key).ok() + f.GetBool(key).ok() +
            f.GetString(key).ok() + f.GetStringArray(key).ok() + f.GetIntArray(key).ok() +
            f.GetFloatArray(key).ok();
    }
    for (const GgufTensorInfo& t : f.tensors()) {
      ASSERT_LE(t.offset, f.file_size());
      ASSERT_LE(t.n_bytes, f.file_size() - t.offset);
      std::vector<float> out(static_cast<size_t>(t.n_elements));
      absl::Status status = f.ReadTensorF32(t, out.data());
      EXPECT_TRUE(status.ok()) << status;  // Open validated the extent and the type
    }
    (void)ok;
  }

  TempDir dir_;
  std::string path_;
};

TEST(GgufFuzzTest, SeedFileOpens) {
  std::vector<IntField> fields;
  Harness h;
  EXPECT_TRUE(h.Run(SeedFile(&fields)));
  EXPECT_TRUE(h.Run(SeedFile(&fields, 64)));
}

TEST(GgufFuzzTest, EveryTruncationFailsCleanly) {
  std::vector<IntField> fields;
  const std::string seed = SeedFile(&fields);
  Harness h;
  for (size_t len = 0; len < seed.size(); ++len) {
    SCOPED_TRACE(len);
    // Only the padding after the last tensor may be cut without losing data.
    const bool opened = h.Run(seed.substr(0, len));
    if (opened) {
      EXPECT_GT(len + 32, seed.size());
    }
  }
}

TEST(GgufFuzzTest, RandomByteFlipsNeverCrash) {
  std::vector<IntField> fields;
  const std::string seed = SeedFile(&fields);
  // Most flips go to the metadata and tensor table; data bytes only change values.
  const size_t header_end = fields.back().pos + 8;
  std::mt19937_64 rng(20250207);
  Harness h;
  int opened = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string bytes = seed;
    const int n_flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < n_flips; ++k) {
      const size_t limit = (rng() % 8 == 0) ? bytes.size() : header_end;
      const size_t pos = rng() % limit;
      if (rng() % 2 == 0) {
        bytes[pos] = static_cast<char>(bytes[pos] ^ (1u << (rng() % 8)));
      } else {
        bytes[pos] = static_cast<char>(rng() & 0xFF);
      }
    }
    opened += h.Run(bytes);
  }
  // Flips in strings and data keep the file valid; flips in counts mostly do not.
  EXPECT_GT(opened, 0);
  EXPECT_LT(opened, 2000);
}

TEST(GgufFuzzTest, HostileIntegerFieldsFailCleanly) {
  for (uint32_t alignment : {32u, 64u}) {
    std::vector<IntField> fields;
    const std::string seed = SeedFile(&fields, alignment);
    const uint64_t size = seed.size();
    const uint64_t values[] = {0,
                               1,
                               3,
                               5,
                               13,
                               31,
                               32,
                               33,
                               1u << 16,
                               (1ull << 31),
                               (1ull << 32) - 1,
                               1ull << 62,
                               1ull << 63,
                               ~0ull,
                               ~0ull - 31,
                               size - 1,
                               size,
                               size + 1};
    Harness h;
    for (const IntField& field : fields) {
      // The 64-byte-aligned variant only matters for offsets and the alignment itself.
      if (alignment != 32 && field.what.find("offset") == std::string::npos &&
          field.what.find("alignment") == std::string::npos) {
        continue;
      }
      for (uint64_t v : values) {
        SCOPED_TRACE(field.what + " = " + std::to_string(v));
        std::string bytes = seed;
        std::memcpy(bytes.data() + field.pos, &v, static_cast<size_t>(field.width));
        h.Run(bytes);
      }
    }
  }
}

TEST(GgufFuzzTest, HostileArraysFailCleanly) {
  Harness h;
  // Arrays nested far deeper than the limit, and element types that do not exist.
  std::string nested = GgufArrayBytes(VT::kUint8, 0, "");
  for (int i = 0; i < 1000; ++i) nested = GgufArrayBytes(VT::kArray, 1, nested);
  GgufWriter deep;
  deep.AddRaw("deep", VT::kArray, nested);
  EXPECT_FALSE(h.Run(deep.Build()));
  for (uint32_t elem_type : {13u, 100u, 0xFFFFFFFFu}) {
    GgufWriter w;
    w.AddRaw("bad", VT::kArray, GgufArrayBytes(static_cast<VT>(elem_type), 1, "\x01"));
    EXPECT_FALSE(h.Run(w.Build()));
  }
  // An array of 2^24 + 1 one-byte values: over the metadata budget, rejected before parsing.
  GgufWriter big;
  const uint64_t n = (1ull << 24) + 1;
  big.AddRaw("big", VT::kArray, GgufArrayBytes(VT::kUint8, n, std::string(n, '\0')));
  EXPECT_FALSE(h.Run(big.Build()));
}

// The metadata and tensor table of the bundled model (its first ~1.8 MB), cut and flipped.
TEST(GgufFuzzTest, BundledModelHeaderFailsCleanly) {
  const std::string model = testing::BundledModelPath();
  if (!testing::FileExists(model)) GTEST_SKIP() << "bundled model not found at " << model;
  absl::StatusOr<std::unique_ptr<GgufFile>> real = GgufFile::Open(model);
  ASSERT_TRUE(real.ok()) << real.status();
  const uint64_t header_bytes = (*real)->data_offset();
  real->reset();
  const std::string header = testing::ReadBytes(model, header_bytes + 4096);
  ASSERT_EQ(header.size(), header_bytes + 4096);
  std::mt19937_64 rng(99);
  Harness h;
  for (int i = 0; i < 10; ++i) {
    const size_t len = static_cast<size_t>(rng() % header.size());
    EXPECT_FALSE(h.Run(header.substr(0, len))) << len;
  }
  for (int i = 0; i < 10; ++i) {
    std::string bytes = header;
    for (int k = 0; k < 3; ++k) bytes[rng() % header_bytes] = static_cast<char>(rng() & 0xFF);
    h.Run(bytes);  // cut tensor data: at best the extent check fails
  }
}

}  // namespace
}  // namespace ctxmem::weights
