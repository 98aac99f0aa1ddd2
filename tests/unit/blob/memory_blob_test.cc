#include "common/blob/memory_blob.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/blob/sha256.h"
#include "tests/unit/blob/test_blob.h"

namespace ctxmem::blob {
namespace {

using testing::MakeTestBlob;
using testing::PatternBytes;
using testing::ReadBytes;
using testing::TempDir;
using testing::WriteBytes;
using weights::StDtype;

constexpr StDtype kKvDtypes[] = {StDtype::kF32, StDtype::kF16, StDtype::kBF16, StDtype::kI8};

// Re-seals the header checksum after a test edited the header on purpose, so that only the
// semantic checks after the checksums can catch the edit.
void ResealHeader(SafetensorsLayout* layout) {
  ASSERT_TRUE(layout->ReplaceMetadataValue(kKeyHeaderSha256, std::string(64, '0')).ok());
  ASSERT_TRUE(
      layout->ReplaceMetadataValue(kKeyHeaderSha256, Sha256Hex(layout->header()).value()).ok());
}

class MemoryBlobDtypeTest : public ::testing::TestWithParam<StDtype> {};

TEST_P(MemoryBlobDtypeTest, SealThenOpenRoundTrips) {
  TempDir dir;
  const StDtype kv_dtype = GetParam();
  testing::TestBlob blob = MakeTestBlob(kv_dtype, /*n_layers=*/3, /*n_kept=*/4, /*salt=*/5);
  const std::string path = dir.File("m.safetensors");
  auto n_bytes = SealBlobToFile(blob.tensors, blob.metadata, path);
  ASSERT_TRUE(n_bytes.ok()) << n_bytes.status();
  const std::string bytes = ReadBytes(path);
  EXPECT_EQ(*n_bytes, bytes.size());
  EXPECT_EQ(bytes, SealBlob(blob.tensors, blob.metadata).value());

  auto opened = MemoryBlob::Open(path, {"sha256:test-model", "sha256:test-tokenizer"});
  ASSERT_TRUE(opened.ok()) << opened.status();
  const MemoryBlob& m = **opened;
  EXPECT_TRUE(m.metadata() == blob.metadata);
  EXPECT_EQ(m.info().n_bytes, bytes.size());
  EXPECT_EQ(m.info().data_sha256, Sha256Hex(bytes.substr(m.info().n_header_bytes)).value());
  EXPECT_EQ(m.file().tensors().size(), blob.tensors.size());
  for (size_t i = 0; i < blob.tensors.size(); ++i) {
    const weights::StTensorInfo* info = m.file().Find(blob.tensors[i].name);
    ASSERT_NE(info, nullptr) << blob.tensors[i].name;
    EXPECT_EQ(info->dtype, blob.tensors[i].dtype);
    EXPECT_EQ(info->shape, blob.tensors[i].shape);
    EXPECT_EQ(
        std::memcmp(m.file().TensorData(*info), blob.buffers[i].data(), blob.buffers[i].size()), 0)
        << blob.tensors[i].name;
  }
}

INSTANTIATE_TEST_SUITE_P(KvDtypes, MemoryBlobDtypeTest, ::testing::ValuesIn(kKvDtypes),
                         [](const auto& info) {
                           return std::string(weights::StDtypeName(info.param));
                         });

TEST(MemoryBlobTest, ChecksumsSitAtTheirFixedOffsets) {
  const std::string bytes = testing::SealTestBlob();
  ASSERT_FALSE(bytes.empty());
  EXPECT_EQ(bytes.substr(8, kBlobHeaderPrefix.size()), kBlobHeaderPrefix);
  const BlobInfo info = VerifyBlob(bytes).value();
  EXPECT_EQ(bytes.substr(kHeaderShaOffset, 64), info.header_sha256);
  EXPECT_EQ(bytes.substr(kDataShaOffset, 64), info.data_sha256);
  std::string zeroed = bytes.substr(0, info.n_header_bytes);
  zeroed.replace(kHeaderShaOffset, 64, std::string(64, '0'));
  EXPECT_EQ(Sha256Hex(zeroed).value(), info.header_sha256);
}

TEST(MemoryBlobTest, SealingIsDeterministic) {
  EXPECT_EQ(testing::SealTestBlob(StDtype::kF16, 2, 3, 1),
            testing::SealTestBlob(StDtype::kF16, 2, 3, 1));
  EXPECT_NE(testing::SealTestBlob(StDtype::kF16, 2, 3, 1),
            testing::SealTestBlob(StDtype::kF16, 2, 3, 2));
}

TEST(MemoryBlobTest, CorruptingAnyByteIsDataLoss) {
  const std::string good = testing::SealTestBlob(StDtype::kBF16, 2, 3);
  ASSERT_TRUE(VerifyBlob(good).ok());
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t flip : {uint8_t{0x01}, uint8_t{0x80}}) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ flip);
      const absl::Status status = VerifyBlob(bad).status();
      ASSERT_EQ(status.code(), absl::StatusCode::kDataLoss)
          << "byte " << i << " of " << good.size() << " ^ " << int{flip} << ": " << status;
    }
  }
}

TEST(MemoryBlobTest, TruncatedOrExtendedBlobsAreDataLoss) {
  const std::string good = testing::SealTestBlob();
  for (size_t n = 0; n < good.size(); ++n) {
    ASSERT_EQ(VerifyBlob(good.substr(0, n)).status().code(), absl::StatusCode::kDataLoss) << n;
  }
  EXPECT_EQ(VerifyBlob(good + '\0').status().code(), absl::StatusCode::kDataLoss);
}

TEST(MemoryBlobTest, ErrorsSayWhatFailed) {
  const std::string good = testing::SealTestBlob();
  const BlobInfo info = VerifyBlob(good).value();
  std::string bad_data = good;
  bad_data.back() ^= 1;
  const absl::Status data = VerifyBlob(bad_data).status();
  EXPECT_NE(data.message().find("data checksum mismatch"), absl::string_view::npos) << data;
  EXPECT_NE(data.message().find(info.data_sha256), absl::string_view::npos) << data;
  std::string bad_header = good;
  bad_header[info.n_header_bytes - 1] = '\t';  // padding or the closing brace
  const absl::Status header = VerifyBlob(bad_header).status();
  EXPECT_NE(header.message().find("header checksum mismatch"), absl::string_view::npos) << header;
  std::string not_blob(8, '\0');
  not_blob[0] = static_cast<char>(250);  // a plausible header length, then no magic
  not_blob += std::string(300, 'x');
  const absl::Status magic = VerifyBlob(not_blob).status();
  EXPECT_EQ(magic.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(magic.message().find("not a ctxmem memory blob"), absl::string_view::npos) << magic;
}

TEST(MemoryBlobTest, ExpectationsAreFailedPrecondition) {
  const std::string good = testing::SealTestBlob();
  const absl::Status model =
      VerifyBlob(good, {.model_fingerprint = "sha256:other", .tokenizer_fingerprint = ""}).status();
  EXPECT_EQ(model.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(model.message().find("sha256:test-model"), absl::string_view::npos) << model;
  EXPECT_NE(model.message().find("sha256:other"), absl::string_view::npos) << model;
  const absl::Status tokenizer =
      VerifyBlob(good, {.model_fingerprint = "", .tokenizer_fingerprint = "sha256:other"}).status();
  EXPECT_EQ(tokenizer.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(tokenizer.message().find("tokenizer"), absl::string_view::npos) << tokenizer;
  EXPECT_TRUE(VerifyBlob(good, {"sha256:test-model", "sha256:test-tokenizer"}).ok());
}

TEST(MemoryBlobTest, UnknownFormatVersionIsFailedPrecondition) {
  testing::TestBlob blob = MakeTestBlob();
  SafetensorsLayout layout = LayoutBlob(blob.tensors, blob.metadata).value();
  ASSERT_TRUE(layout.ReplaceMetadataValue(kKeyFormatVersion, "9").ok());
  ResealHeader(&layout);
  const absl::Status status = VerifyBlob(layout.ToBytes()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find("version 9"), absl::string_view::npos) << status;
}

TEST(MemoryBlobTest, HeaderInconsistentWithTensorsIsDataLoss) {
  testing::TestBlob blob = MakeTestBlob(StDtype::kBF16, 2, 3);
  SafetensorsLayout layout = LayoutBlob(blob.tensors, blob.metadata).value();
  ASSERT_TRUE(layout.ReplaceMetadataValue(kKeyNKept, "[3,2]").ok());
  ResealHeader(&layout);
  const absl::Status status = VerifyBlob(layout.ToBytes()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_NE(status.message().find("layer 1"), absl::string_view::npos) << status;
}

TEST(MemoryBlobTest, SealRejectsTensorsThatDoNotFitTheMetadata) {
  auto seal_code = [](void (*mutate)(testing::TestBlob*)) {
    testing::TestBlob blob = MakeTestBlob(StDtype::kI8, 2, 3);
    mutate(&blob);
    return SealBlob(blob.tensors, blob.metadata).status().code();
  };
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(seal_code([](testing::TestBlob*) {}), absl::StatusCode::kOk);
  EXPECT_EQ(seal_code([](testing::TestBlob* b) { b->tensors.erase(b->tensors.begin()); }),
            kInvalid);  // no layers.0.k
  EXPECT_EQ(seal_code([](testing::TestBlob* b) { b->metadata.n_kept[0] = 2; }), kInvalid);
  EXPECT_EQ(seal_code([](testing::TestBlob* b) { b->tensors[2].dtype = StDtype::kI32; }),
            kInvalid);  // src must be I64
  EXPECT_EQ(seal_code([](testing::TestBlob* b) {
              b->tensors[0].shape = {2, 3, 2, 2};
            }),
            kInvalid);  // k must be rank 3
  EXPECT_EQ(seal_code([](testing::TestBlob* b) {
              b->tensors[3].shape = {2, 2, 4};
            }),
            kInvalid);  // k_scale must be per channel
  EXPECT_EQ(seal_code([](testing::TestBlob* b) { b->metadata.model_fingerprint.clear(); }),
            kInvalid);
}

TEST(MemoryBlobTest, EmptyMemoryAndExtraTensorsSeal) {
  testing::TestBlob blob = MakeTestBlob(StDtype::kF16, 2, /*n_kept=*/0);
  blob.metadata.n_sinks = 0;
  std::vector<uint8_t> rcc = PatternBytes(StDtype::kF32, 6, 0);
  blob.tensors.push_back({"rcc.vectors", StDtype::kF32, {2, 3}, rcc.data()});
  const std::string bytes = SealBlob(blob.tensors, blob.metadata).value();
  const BlobInfo info = VerifyBlob(bytes).value();
  EXPECT_EQ(info.metadata.n_kept, (std::vector<int64_t>{0, 0}));
}

TEST(MemoryBlobTest, OpenMissingFileIsNotFound) {
  TempDir dir;
  EXPECT_EQ(MemoryBlob::Open(dir.File("nope.safetensors")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(MemoryBlobTest, OpenCorruptFileIsDataLossNamingThePath) {
  TempDir dir;
  std::string bytes = testing::SealTestBlob();
  bytes[bytes.size() / 2] ^= 0x10;
  const std::string path = dir.File("bad.safetensors");
  ASSERT_TRUE(WriteBytes(path, bytes));
  const absl::Status status = MemoryBlob::Open(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(status.message().find(path), absl::string_view::npos) << status;
}

// Writes a blob for tests/reference/check_blob_python.py when CTXMEM_BLOB_SAMPLE names a path
// (see docs/blob_format.md); one blob per kv dtype, suffixed ".<dtype>.safetensors".
TEST(MemoryBlobTest, WritesSamplesForThePythonCheck) {
  const char* sample = std::getenv("CTXMEM_BLOB_SAMPLE");
  if (sample == nullptr || *sample == '\0') GTEST_SKIP() << "set CTXMEM_BLOB_SAMPLE=<prefix>";
  for (StDtype kv_dtype : kKvDtypes) {
    testing::TestBlob blob = MakeTestBlob(kv_dtype, 3, 5, 2);
    const std::string path =
        absl::StrCat(sample, ".", std::string(weights::StDtypeName(kv_dtype)), ".safetensors");
    ASSERT_TRUE(SealBlobToFile(blob.tensors, blob.metadata, path).ok()) << path;
    std::printf("wrote %s\n", path.c_str());
  }
}

}  // namespace
}  // namespace ctxmem::blob
