#include "common/weights/ggml_type.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "common/weights/float16.h"
#include "tests/unit/weights/test_files.h"

namespace ctxmem::weights {
namespace {

using testing::Base64Bytes;
using testing::Base64Floats;
using testing::SameFloat;

constexpr GgmlType kAllTypes[] = {
    GgmlType::kF32,  GgmlType::kF16,  GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0,
    GgmlType::kQ5_1, GgmlType::kQ8_0, GgmlType::kQ8_1, GgmlType::kQ2_K, GgmlType::kQ3_K,
    GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kQ8_K, GgmlType::kBF16,
};

TEST(GgmlTypeTest, TraitsMatchGgmlBlockLayouts) {
  struct Expected {
    GgmlType type;
    const char* name;
    int64_t block_elems;
    int64_t block_bytes;
  };
  // From ggml.c's type_traits table (blck_size, type_size).
  const Expected expected[] = {
      {GgmlType::kF32, "f32", 1, 4},       {GgmlType::kF16, "f16", 1, 2},
      {GgmlType::kQ4_0, "q4_0", 32, 18},   {GgmlType::kQ4_1, "q4_1", 32, 20},
      {GgmlType::kQ5_0, "q5_0", 32, 22},   {GgmlType::kQ5_1, "q5_1", 32, 24},
      {GgmlType::kQ8_0, "q8_0", 32, 34},   {GgmlType::kQ8_1, "q8_1", 32, 36},
      {GgmlType::kQ2_K, "q2_K", 256, 84},  {GgmlType::kQ3_K, "q3_K", 256, 110},
      {GgmlType::kQ4_K, "q4_K", 256, 144}, {GgmlType::kQ5_K, "q5_K", 256, 176},
      {GgmlType::kQ6_K, "q6_K", 256, 210}, {GgmlType::kQ8_K, "q8_K", 256, 292},
      {GgmlType::kBF16, "bf16", 1, 2},
  };
  for (const Expected& e : expected) {
    absl::StatusOr<GgmlTypeTraits> traits = GetGgmlTypeTraits(static_cast<uint32_t>(e.type));
    ASSERT_TRUE(traits.ok()) << traits.status();
    EXPECT_EQ(traits->name, e.name);
    EXPECT_EQ(traits->block_elems, e.block_elems) << e.name;
    EXPECT_EQ(traits->block_bytes, e.block_bytes) << e.name;
    EXPECT_TRUE(traits->dequantizable) << e.name;
  }
}

TEST(GgmlTypeTest, UnknownTypeIdsAreInvalidArgument) {
  for (uint32_t id : {4u, 5u, 16u, 29u, 31u, 1000u, 0xFFFFFFFFu}) {
    absl::StatusOr<GgmlTypeTraits> traits = GetGgmlTypeTraits(id);
    EXPECT_EQ(traits.status().code(), absl::StatusCode::kInvalidArgument) << id;
    EXPECT_NE(traits.status().message().find(std::to_string(id)), absl::string_view::npos);
  }
}

TEST(GgmlTypeTest, ByteSizeChecksBlocksAndOverflow) {
  EXPECT_EQ(*GgmlByteSize(GgmlType::kF32, 10), 40u);
  EXPECT_EQ(*GgmlByteSize(GgmlType::kQ4_1, 576), 18u * 20u);
  EXPECT_EQ(*GgmlByteSize(GgmlType::kQ6_K, 512), 420u);
  EXPECT_EQ(*GgmlByteSize(GgmlType::kQ8_0, 0), 0u);
  EXPECT_EQ(GgmlByteSize(GgmlType::kQ4_0, 33).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GgmlByteSize(GgmlType::kF32, -1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GgmlByteSize(GgmlType::kF32, std::numeric_limits<int64_t>::max()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*GgmlByteSize(GgmlType::kQ8_K, std::numeric_limits<int64_t>::max() / 256 * 256),
            uint64_t{std::numeric_limits<int64_t>::max() / 256} * 292);
  EXPECT_EQ(GgmlByteSize(static_cast<GgmlType>(4), 32).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(GgmlTypeTest, DequantizeRejectsWrongSourceSize) {
  std::vector<uint8_t> src(20, 0);
  std::vector<float> dst(64);
  absl::Status status = DequantizeGgml(GgmlType::kQ4_1, src.data(), src.size(), 64, dst.data());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("src_bytes=20"), absl::string_view::npos) << status;
  EXPECT_EQ(DequantizeGgml(GgmlType::kQ4_1, src.data(), src.size(), 31, dst.data()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DequantizeGgml(static_cast<GgmlType>(5), src.data(), 0, 0, dst.data()).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(GgmlTypeTest, DequantizesZeroElements) {
  EXPECT_TRUE(DequantizeGgml(GgmlType::kQ4_K, nullptr, 0, 0, nullptr).ok());
  EXPECT_TRUE(DequantizeGgml(GgmlType::kF32, nullptr, 0, 0, nullptr).ok());
}

// A hand-built q4_0 block: d = 0.5, nibbles 0..15 then 15..0.
TEST(GgmlTypeTest, DequantizesHandBuiltQ4_0Block) {
  uint8_t block[18];
  const uint16_t d = FloatToHalf(0.5f);
  std::memcpy(block, &d, 2);
  for (int j = 0; j < 16; ++j) block[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float out[32];
  ASSERT_TRUE(DequantizeGgml(GgmlType::kQ4_0, block, sizeof(block), 32, out).ok());
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], 0.5f * static_cast<float>(j - 8)) << j;
    EXPECT_EQ(out[j + 16], 0.5f * static_cast<float>(7 - j)) << j;
  }
}

// q8_1 and q8_K cannot be made by gguf-py; check them against their definitions.
TEST(GgmlTypeTest, DequantizesHandBuiltQ8_1AndQ8_KBlocks) {
  uint8_t q8_1[36];
  const uint16_t d = FloatToHalf(0.25f);
  const uint16_t s = FloatToHalf(123.0f);  // the sum field must not affect the values
  std::memcpy(q8_1, &d, 2);
  std::memcpy(q8_1 + 2, &s, 2);
  for (int j = 0; j < 32; ++j) q8_1[4 + j] = static_cast<uint8_t>(static_cast<int8_t>(j * 8 - 128));
  float out[256];
  ASSERT_TRUE(DequantizeGgml(GgmlType::kQ8_1, q8_1, sizeof(q8_1), 32, out).ok());
  for (int j = 0; j < 32; ++j) EXPECT_EQ(out[j], 0.25f * static_cast<float>(j * 8 - 128));

  uint8_t q8_k[292] = {};
  const float dk = 0.125f;
  std::memcpy(q8_k, &dk, 4);
  for (int j = 0; j < 256; ++j) q8_k[4 + j] = static_cast<uint8_t>(j);
  ASSERT_TRUE(DequantizeGgml(GgmlType::kQ8_K, q8_k, sizeof(q8_k), 256, out).ok());
  for (int j = 0; j < 256; ++j) {
    EXPECT_EQ(out[j], dk * static_cast<float>(static_cast<int8_t>(j))) << j;
  }
}

// Every golden case of tests/data/weights/ggml_quants.json (made by gguf-py) decodes to exactly
// the floats gguf.quants.dequantize produced.
TEST(GgmlTypeTest, MatchesGgufPyDequantizeGoldens) {
  const std::string path = testing::WeightsDataDir() + "/ggml_quants.json";
  nlohmann::json goldens = testing::LoadJson(path);
  ASSERT_FALSE(goldens.is_discarded()) << "cannot read " << path;
  ASSERT_TRUE(goldens.contains("cases"));
  int n_cases = 0;
  std::vector<std::string> types_seen;
  for (const nlohmann::json& c : goldens["cases"]) {
    const std::string type_name = c["type"].get<std::string>();
    const std::string kind = c["kind"].get<std::string>();
    SCOPED_TRACE(type_name + " " + kind);
    const auto type = static_cast<GgmlType>(c["type_id"].get<uint32_t>());
    const int64_t n_elements = c["n_elements"].get<int64_t>();
    const std::string raw = Base64Bytes(c["raw"].get<std::string>());
    const std::vector<float> want = Base64Floats(c["values_f32"].get<std::string>());
    ASSERT_EQ(static_cast<int64_t>(want.size()), n_elements);
    std::vector<float> got(static_cast<size_t>(n_elements));
    absl::Status status = DequantizeGgml(type, reinterpret_cast<const uint8_t*>(raw.data()),
                                         raw.size(), n_elements, got.data());
    ASSERT_TRUE(status.ok()) << status;
    int mismatches = 0;
    for (int64_t i = 0; i < n_elements; ++i) {
      if (!SameFloat(got[i], want[i]) && ++mismatches <= 5) {
        ADD_FAILURE() << "element " << i << ": got " << got[i] << ", gguf-py " << want[i];
      }
    }
    EXPECT_EQ(mismatches, 0);
    if (kind == "quantized") {
      // Sanity of the golden itself: each value stays within a quarter of its block's largest
      // magnitude of the source (4-bit steps are 1/8 of it; f16/bf16 are far closer).
      const std::vector<float> source = Base64Floats(c["source_f32"].get<std::string>());
      ASSERT_EQ(source.size(), got.size());
      const size_t block = 32;
      for (size_t b = 0; b < got.size(); b += block) {
        float amax = 0.0f;
        for (size_t i = b; i < b + block; ++i) amax = std::max(amax, std::fabs(source[i]));
        for (size_t i = b; i < b + block; ++i) {
          EXPECT_NEAR(got[i], source[i], amax / 4 + 1e-6f) << i;
        }
      }
    }
    types_seen.push_back(type_name);
    ++n_cases;
  }
  EXPECT_GE(n_cases, 19);
  for (const char* t : {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
                        "Q6_K", "F16", "BF16"}) {
    EXPECT_NE(std::find(types_seen.begin(), types_seen.end(), t), types_seen.end()) << t;
  }
}

TEST(GgmlTypeTest, EveryTypeIsDequantizableOrSaysSo) {
  for (GgmlType type : kAllTypes) {
    const GgmlTypeTraits traits = *GetGgmlTypeTraits(static_cast<uint32_t>(type));
    std::vector<uint8_t> src(static_cast<size_t>(traits.block_bytes), 0);
    std::vector<float> dst(static_cast<size_t>(traits.block_elems), -1.0f);
    absl::Status status =
        DequantizeGgml(type, src.data(), src.size(), traits.block_elems, dst.data());
    EXPECT_EQ(status.ok(), traits.dequantizable) << traits.name << ": " << status;
    if (status.ok()) {
      for (float v : dst) EXPECT_EQ(v, 0.0f) << traits.name;  // all-zero block = zeros
    }
  }
}

}  // namespace
}  // namespace ctxmem::weights
