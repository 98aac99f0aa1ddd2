// Robustness of SafetensorsFile / SafetensorsCheckpoint on malformed input: truncations, random
// byte flips, hostile header lengths and JSON headers, broken shard indexes. Every case must end
// in a non-OK status or a file whose tensors can all be read; never a crash, an out-of-bounds
// read (ASan), undefined behaviour (UBSan) or an exception.

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/weights/float16.h"
#include "common/weights/safetensors_file.h"
#include "tests/unit/weights/test_files.h"

namespace ctxmem::weights {
namespace {

using testing::SafetensorsWriter;
using testing::TempDir;

SafetensorsWriter SeedWriter() {
  SafetensorsWriter w;
  w.AddMetadata("format", "pt");
  w.AddTensorF32("model.norm.weight", {2, 3}, {1, 2, 3, 4, 5, 6});
  std::string f16, bf16, f64;
  for (int i = 0; i < 4; ++i) {
    testing::Put<uint16_t>(&f16, FloatToHalf(0.5f * i));
    testing::Put<uint16_t>(&bf16, FloatToBFloat16(-0.25f * i));
    testing::Put<double>(&f64, 1.5 * i);
  }
  w.AddTensor("h", "F16", {4}, f16);
  w.AddTensor("b", "BF16", {2, 2}, bf16);
  w.AddTensor("d", "F64", {4, 1}, f64);
  w.AddTensor("ids", "I64", {2}, std::string(16, '\x01'));
  w.AddTensor("mask", "BOOL", {3}, std::string("\x01\x00\x01", 3));
  w.AddTensor("none", "F32", {0, 5}, "");
  return w;
}

// Opens `bytes` from a file; when that succeeds, reads every float tensor.
class Harness {
 public:
  Harness() : path_(dir_.File("fuzz.safetensors")) {}

  bool Run(const std::string& bytes) {
    if (!testing::WriteBytes(path_, bytes)) {
      ADD_FAILURE() << "cannot write " << path_;
      return false;
    }
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path_);
    if (!file.ok()) {
      EXPECT_FALSE(file.status().message().empty());
      return false;
    }
    const SafetensorsFile& f = **file;
    for (const StTensorInfo& t : f.tensors()) {
      EXPECT_EQ(f.Find(t.name), &t);
      std::vector<float> out(static_cast<size_t>(t.n_elements));
      absl::Status status = f.ReadF32(t, out.data());
      const bool is_float = t.dtype == StDtype::kF32 || t.dtype == StDtype::kF16 ||
                            t.dtype == StDtype::kBF16 || t.dtype == StDtype::kF64;
      EXPECT_EQ(status.ok(), is_float) << status;
    }
    return true;
  }

 private:
  TempDir dir_;
  std::string path_;
};

TEST(SafetensorsFuzzTest, SeedFilesOpen) {
  Harness h;
  EXPECT_TRUE(h.Run(SeedWriter().Build()));
  const std::string reference =
      testing::ReadBytes(testing::WeightsDataDir() + "/reference.safetensors");
  ASSERT_FALSE(reference.empty());
  EXPECT_TRUE(h.Run(reference));
}

TEST(SafetensorsFuzzTest, EveryTruncationFailsCleanly) {
  const std::string seed = SeedWriter().Build();
  Harness h;
  for (size_t len = 0; len < seed.size(); ++len) {
    EXPECT_FALSE(h.Run(seed.substr(0, len))) << len;
  }
}

TEST(SafetensorsFuzzTest, RandomByteFlipsNeverCrash) {
  const std::string seeds[] = {SeedWriter().Build(), testing::ReadBytes(testing::WeightsDataDir() +
                                                                        "/reference.safetensors")};
  // Replacement bytes biased towards JSON syntax and digits, so flips reach the validation
  // code rather than only the JSON parser.
  const std::string alphabet = "0123456789[]{},:\"-.eE +\\u0000F16BF32I64";
  std::mt19937_64 rng(1234);
  Harness h;
  int opened = 0;
  for (const std::string& seed : seeds) {
    ASSERT_GE(seed.size(), 8u);
    uint64_t header_len;
    std::memcpy(&header_len, seed.data(), 8);
    for (int i = 0; i < 1000; ++i) {
      std::string bytes = seed;
      const int n_flips = 1 + static_cast<int>(rng() % 3);
      for (int k = 0; k < n_flips; ++k) {
        const size_t pos = (rng() % 10 == 0) ? rng() % bytes.size() : rng() % (8 + header_len);
        switch (rng() % 3) {
          case 0:
            bytes[pos] = static_cast<char>(bytes[pos] ^ (1u << (rng() % 8)));
            break;
          case 1:
            bytes[pos] = static_cast<char>(rng() & 0xFF);
            break;
          default:
            bytes[pos] = alphabet[rng() % alphabet.size()];
        }
      }
      opened += h.Run(bytes);
    }
  }
  EXPECT_GT(opened, 0);
}

TEST(SafetensorsFuzzTest, HostileHeaderLengthsFailCleanly) {
  const std::string seed = SeedWriter().Build();
  uint64_t real_len;
  std::memcpy(&real_len, seed.data(), 8);
  Harness h;
  for (uint64_t v :
       {uint64_t{0}, uint64_t{1}, real_len - 1, real_len + 1, uint64_t{seed.size() - 8},
        uint64_t{seed.size() - 7}, uint64_t{seed.size()}, uint64_t{1} << 31, uint64_t{1} << 32,
        uint64_t{1} << 63, ~uint64_t{0}, ~uint64_t{0} - 7}) {
    std::string bytes = seed;
    std::memcpy(bytes.data(), &v, 8);
    EXPECT_FALSE(h.Run(bytes)) << v;
  }
}

TEST(SafetensorsFuzzTest, HostileHeadersFailCleanly) {
  const std::string data(64, '\x11');
  const std::string deep_array = std::string(20000, '[') + std::string(20000, ']');
  const std::string deep_object = [] {
    std::string s;
    for (int i = 0; i < 5000; ++i) s += "{\"a\":";
    s += "1";
    for (int i = 0; i < 5000; ++i) s += "}";
    return s;
  }();
  const std::vector<std::string> headers = {
      "",
      " ",
      "{",
      "}",
      "null",
      "{\"x\":null}",
      "{\"x\":[]}",
      "{\"x\":{}}",
      "{\"x\":{\"dtype\":1,\"shape\":[1],\"data_offsets\":[0,4]}}",
      "{\"x\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}",
      "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}",
      "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}",
      "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",\"4\"]}}",
      "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,1e400]}}",
      "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,18446744073709551615]}}",
      "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[18446744073709551612,"
      "18446744073709551615]}}",
      "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999999]}}",
      "{\"x\":{\"dtype\":\"F32\",\"shape\":[9223372036854775807],\"data_offsets\":[0,4]}}",
      "{\"x\":{\"dtype\":\"F32\",\"shape\":[9223372036854775808],\"data_offsets\":[0,4]}}",
      "{\"x\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}}",
      "{\"x\":{\"dtype\":\"F32\",\"shape\":[1,-1],\"data_offsets\":[0,4]}}",
      "{\"x\":{\"dtype\":\"F32\",\"shape\":[true],\"data_offsets\":[0,4]}}",
      "{\"x\":{\"dtype\":\"F32\",\"shape\":[[1]],\"data_offsets\":[0,4]}}",
      "{\"x\":{\"dtype\":\"\\u0000\",\"shape\":[1],\"data_offsets\":[0,4]}}",
      "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
      "\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
      "{\"x\":{\"dtype\":\"F32\",\"shape\":[16],\"data_offsets\":[0,64]},"
      "\"y\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[63,64]}}",
      "{\"__metadata__\":null}",
      "{\"__metadata__\":{\"a\":{\"b\":\"c\"}}}",
      "{\"__metadata__\":\"x\"}",
      "\xff\xfe{}",
      "{\"\xff\":{}}",
      deep_array,
      deep_object,
      "{\"x\":" + deep_array + "}",
  };
  Harness h;
  for (const std::string& header : headers) {
    SCOPED_TRACE(header.substr(0, 80));
    EXPECT_FALSE(h.Run(SafetensorsWriter::Assemble(header, data)));
  }
  // Valid corner cases still open: no tensors, zero-size tensors anywhere in the data.
  EXPECT_TRUE(h.Run(SafetensorsWriter::Assemble("{}", "")));
  EXPECT_TRUE(h.Run(SafetensorsWriter::Assemble(
      "{\"x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[64,64]}}", data)));
}

TEST(SafetensorsFuzzTest, BrokenShardIndexesFailCleanly) {
  TempDir dir;
  SafetensorsWriter a;
  a.AddTensorF32("w.0", {2}, {1, 2});
  a.AddTensorF32("w.1", {1}, {3});
  ASSERT_TRUE(testing::WriteBytes(dir.File("a.safetensors"), a.Build()));
  const std::string index =
      R"({"metadata":{"total_size":12},"weight_map":{"w.0":"a.safetensors","w.1":"a.safetensors"}})";
  const std::string alphabet = "./\\\"{}[]:,0a";
  std::mt19937_64 rng(5);
  int opened = 0;
  for (int i = 0; i < 500; ++i) {
    std::string bytes = index;
    bytes[rng() % bytes.size()] =
        (rng() % 2 == 0) ? static_cast<char>(rng() & 0xFF) : alphabet[rng() % alphabet.size()];
    ASSERT_TRUE(testing::WriteBytes(dir.File("model.safetensors.index.json"), bytes));
    absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> ckpt =
        SafetensorsCheckpoint::Open(dir.path());
    if (!ckpt.ok()) continue;
    ++opened;
    for (const std::string& name : (*ckpt)->TensorNames()) {
      std::vector<int64_t> shape;
      EXPECT_TRUE((*ckpt)->ReadF32(name, &shape).ok()) << name;
    }
  }
  EXPECT_GT(opened, 0);
}

}  // namespace
}  // namespace ctxmem::weights
