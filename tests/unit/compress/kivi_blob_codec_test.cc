#include "common/compress/kivi_blob_codec.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "common/blob/blob_id.h"
#include "common/blob/memory_blob.h"
#include "common/compress/blob_tensor_table.h"
#include "tests/unit/compress/test_util.h"

namespace ctxmem::compress {
namespace {

using weights::StDtype;

// 2 layers, 2 kv heads, head_dim 8, 11 entries (11 = partial key groups at G=4).
Memory SmallMemory() {
  Memory memory;
  memory.n_sinks = 2;
  memory.n_tokens = 40;
  for (int i = 0; i < 2; ++i) {
    LayerMemory layer;
    layer.k = testing::Wave({2, 11, 8}, 0.4 * i, 1.5);
    layer.v = testing::Wave({2, 11, 8}, 1.3 + i, 0.7);
    layer.src = at::arange(11, at::kLong).unsqueeze(0).expand({2, 11}).contiguous() * 3;
    layer.rank = at::zeros({2, 11});
    memory.layers.push_back(layer);
  }
  return memory;
}

KvFormat Int4(int64_t group) {
  KvFormat f;
  f.dtype = KvDtype::kInt4;
  f.group_size = group;
  return f;
}

blob::BlobMetadata Base() {
  blob::BlobMetadata m;
  m.model_fingerprint = "sha256:test";
  m.compression_config = "{}";
  return m;
}

TEST(KiviBlobCodecTest, WritesTheDocumentedTensorsAndMetadata) {
  auto encoded = EncodeKiviMemory(SmallMemory(), Int4(4), Base());
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  EXPECT_EQ(encoded->metadata.format_version, 2);
  EXPECT_EQ(encoded->metadata.kv_dtype, StDtype::kU8);
  EXPECT_EQ(encoded->metadata.quantization, blob::BlobQuantization::kKiviInt4);
  EXPECT_EQ(encoded->metadata.kv_group_size, 4);
  EXPECT_EQ(encoded->metadata.n_kept, (std::vector<int64_t>{11, 11}));
  std::map<std::string, std::pair<StDtype, std::vector<int64_t>>> got;
  for (const blob::RawTensor& t : encoded->tensors) got[t.name] = {t.dtype, t.shape};
  ASSERT_EQ(got.size(), 14u);  // 7 per layer
  using Entry = std::pair<StDtype, std::vector<int64_t>>;
  EXPECT_EQ(got[blob::KeyTensorName(1)], (Entry{StDtype::kU8, {2, 11, 4}}));       // 2 codes a byte
  EXPECT_EQ(got[blob::KeyScaleTensorName(1)], (Entry{StDtype::kF16, {2, 3, 8}}));  // ceil(11/4)
  EXPECT_EQ(got[blob::KeyZeroTensorName(1)], (Entry{StDtype::kF16, {2, 3, 8}}));
  EXPECT_EQ(got[blob::ValueTensorName(1)], (Entry{StDtype::kU8, {2, 11, 4}}));
  EXPECT_EQ(got[blob::ValueScaleTensorName(1)], (Entry{StDtype::kF16, {2, 11, 2}}));  // 8/4
  EXPECT_EQ(got[blob::ValueZeroTensorName(1)], (Entry{StDtype::kF16, {2, 11, 2}}));
  EXPECT_EQ(got[blob::SrcTensorName(1)], (Entry{StDtype::kI32, {2, 11}}));
}

TEST(KiviBlobCodecTest, DecodesWhatKiviDequantizeGivesAndChecksShapes) {
  const Memory memory = SmallMemory();
  auto encoded = EncodeKiviMemory(memory, Int4(4), Base());
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  auto bytes = blob::SealBlob(encoded->tensors, encoded->metadata);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto table = TableOfBytes(*bytes);
  ASSERT_TRUE(table.ok()) << table.status();
  auto k = DecodeKiviTensor(*table, blob::KeyTensorName(0), blob::KeyScaleTensorName(0),
                            blob::KeyZeroTensorName(0), Int4(4), KiviGroupAxis::kTokens, 2, 11, 8);
  ASSERT_TRUE(k.ok()) << k.status();
  auto q = KiviQuantize(memory.layers[0].k, Int4(4), KiviGroupAxis::kTokens);
  ASSERT_TRUE(q.ok());
  auto expected = KiviDequantize(*q, Int4(4), KiviGroupAxis::kTokens, 11, 8);
  ASSERT_TRUE(expected.ok());
  EXPECT_TRUE(at::equal(*k, *expected));
  // A group size the blob was not made with: its scales do not fit, DataLoss naming them.
  auto wrong =
      DecodeKiviTensor(*table, blob::KeyTensorName(0), blob::KeyScaleTensorName(0),
                       blob::KeyZeroTensorName(0), Int4(8), KiviGroupAxis::kTokens, 2, 11, 8);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(wrong.status().message().find(blob::KeyScaleTensorName(0)), std::string::npos)
      << wrong.status();
  auto missing =
      DecodeKiviTensor(*table, "layers.9.k", blob::KeyScaleTensorName(0),
                       blob::KeyZeroTensorName(0), Int4(4), KiviGroupAxis::kTokens, 2, 11, 8);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kDataLoss);
}

TEST(KiviBlobCodecTest, RejectsEmptyAndRaggedMemories) {
  EXPECT_EQ(EncodeKiviMemory(Memory{}, Int4(4), Base()).status().code(),
            absl::StatusCode::kInvalidArgument);
  Memory ragged = SmallMemory();
  ragged.layers[1].k = ragged.layers[1].k.narrow(1, 0, 10);
  EXPECT_EQ(EncodeKiviMemory(ragged, Int4(4), Base()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ctxmem::compress
