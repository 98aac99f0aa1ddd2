#include "common/blob/blob_metadata.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "tests/unit/blob/test_blob.h"

namespace ctxmem::blob {
namespace {

using weights::StDtype;

std::map<std::string, std::string> AsMap(const MetadataEntries& entries) {
  return std::map<std::string, std::string>(entries.begin(), entries.end());
}

TEST(BlobMetadataTest, EntriesRoundTrip) {
  const BlobMetadata m = testing::MakeTestBlob(StDtype::kF16, 3, 5, 7, "abc").metadata;
  ASSERT_TRUE(m.Validate().ok());
  auto parsed = ParseBlobMetadata(AsMap(ToMetadataEntries(m)));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(*parsed == m);
  EXPECT_EQ(parsed->n_layers(), 3);
  EXPECT_EQ(parsed->extra.at("x.test_salt"), "7");
}

TEST(BlobMetadataTest, FixedKeysComeFirst) {
  const MetadataEntries entries = ToMetadataEntries(testing::MakeTestBlob().metadata);
  ASSERT_GE(entries.size(), 4u);
  EXPECT_EQ(entries[0],
            (std::pair<std::string, std::string>{"ctxmem.magic", "ctxmem-memory-blob"}));
  EXPECT_EQ(entries[1].first, "ctxmem.header_sha256");
  EXPECT_EQ(entries[1].second, std::string(64, '0'));
  EXPECT_EQ(entries[2].first, "ctxmem.data_sha256");
  EXPECT_EQ(entries[3], (std::pair<std::string, std::string>{"ctxmem.format_version", "1"}));
  EXPECT_EQ(AsMap(entries).at("ctxmem.n_kept"), "[3,3]");
  EXPECT_EQ(AsMap(entries).at("ctxmem.kv_dtype"), "BF16");
}

TEST(BlobMetadataTest, UnknownVersionIsFailedPrecondition) {
  auto entries = AsMap(ToMetadataEntries(testing::MakeTestBlob().metadata));
  entries["ctxmem.format_version"] = "3";
  entries.erase("ctxmem.n_kept");  // a newer version may change anything else
  auto parsed = ParseBlobMetadata(entries);
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(parsed.status().message().find("version 3"), absl::string_view::npos);
}

TEST(BlobMetadataTest, KiviNeedsVersion2AndAGroupSize) {
  BlobMetadata m = testing::MakeTestBlob().metadata;
  m.kv_dtype = weights::StDtype::kU8;
  m.quantization = BlobQuantization::kKiviInt4;
  m.kv_group_size = 32;
  EXPECT_EQ(m.Validate().code(), absl::StatusCode::kInvalidArgument);  // version 1
  m.format_version = 2;
  EXPECT_TRUE(m.Validate().ok()) << m.Validate();
  m.append_state = "{\"n_steps_done\":3}";
  auto entries = AsMap(ToMetadataEntries(m));
  EXPECT_EQ(entries.at("ctxmem.kv_group_size"), "32");
  EXPECT_EQ(entries.at("ctxmem.quantization"), "kivi_int4");
  auto parsed = ParseBlobMetadata(entries);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, m);
  m.kv_group_size = 0;
  EXPECT_EQ(m.Validate().code(), absl::StatusCode::kInvalidArgument);
  m.kv_group_size = 32;
  m.kv_dtype = weights::StDtype::kI8;
  EXPECT_EQ(m.Validate().code(), absl::StatusCode::kInvalidArgument);
  m.kv_dtype = weights::StDtype::kU8;
  m.append_state = "[1]";
  EXPECT_EQ(m.Validate().code(), absl::StatusCode::kInvalidArgument);
  // Float blobs, with or without an append state, stay version 1.
  EXPECT_EQ(testing::MakeTestBlob().metadata.format_version, 1);
}

TEST(BlobMetadataTest, MissingOrMalformedEntriesAreDataLoss) {
  const auto good = AsMap(ToMetadataEntries(testing::MakeTestBlob().metadata));
  for (const auto& [key, value] : good) {
    if (key.rfind("x.", 0) == 0 || key == "ctxmem.header_sha256" || key == "ctxmem.data_sha256") {
      continue;  // optional, or checked by VerifyBlob
    }
    auto entries = good;
    entries.erase(key);
    EXPECT_EQ(ParseBlobMetadata(entries).status().code(), absl::StatusCode::kDataLoss) << key;
  }
  const std::pair<std::string, std::string> bad[] = {
      {"ctxmem.magic", "something-else"},
      {"ctxmem.format_version", "+1"},
      {"ctxmem.n_original_tokens", "-5"},
      {"ctxmem.n_original_tokens", "99999999999999999999"},
      {"ctxmem.n_sinks", " 1"},
      {"ctxmem.n_sinks", "4"},  // more than n_kept
      {"ctxmem.n_kept", "[3,-3]"},
      {"ctxmem.n_kept", "[3,"},
      {"ctxmem.n_kept", "{}"},
      {"ctxmem.kv_dtype", "F99"},
      {"ctxmem.kv_dtype", "I64"},  // not a float type without quantization
      {"ctxmem.quantization", "int4"},
      {"ctxmem.compression_config", "not json"},
      {"ctxmem.model_fingerprint", ""},
  };
  for (const auto& [key, value] : bad) {
    auto entries = good;
    entries[key] = value;
    EXPECT_EQ(ParseBlobMetadata(entries).status().code(), absl::StatusCode::kDataLoss)
        << key << "=" << value;
  }
}

TEST(BlobMetadataTest, ValidateNamesTheField) {
  auto check = [](void (*mutate)(BlobMetadata*), absl::string_view word) {
    BlobMetadata m = testing::MakeTestBlob().metadata;
    mutate(&m);
    const absl::Status status = m.Validate();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << word;
    EXPECT_NE(status.message().find(word), absl::string_view::npos) << status;
  };
  check([](BlobMetadata* m) { m->format_version = 3; }, "format_version=3");
  check([](BlobMetadata* m) { m->model_fingerprint.clear(); }, "model_fingerprint");
  check([](BlobMetadata* m) { m->compression_config = "[1]"; }, "compression_config");
  check([](BlobMetadata* m) { m->n_original_tokens = -1; }, "n_original_tokens=-1");
  check([](BlobMetadata* m) { m->n_kept[1] = 0; }, "n_kept[1]=0");
  check([](BlobMetadata* m) { m->n_kept.assign(kMaxBlobLayers + 1, 3); }, "n_layers=4097");
  check([](BlobMetadata* m) { m->kv_dtype = StDtype::kI8; }, "kv_dtype=I8");
  check([](BlobMetadata* m) { m->quantization = BlobQuantization::kInt8PerChannel; },
        "quantization=int8_per_channel");
  check([](BlobMetadata* m) { m->extra["ctxmem.mine"] = "x"; }, "ctxmem.mine");
  check([](BlobMetadata* m) { m->created_unix_ms = -1; }, "created_unix_ms=-1");
}

TEST(BlobMetadataTest, QuantizationNamesAndTensorNames) {
  EXPECT_EQ(ParseBlobQuantization("none").value(), BlobQuantization::kNone);
  EXPECT_EQ(ParseBlobQuantization("int8_per_channel").value(), BlobQuantization::kInt8PerChannel);
  const absl::Status unknown = ParseBlobQuantization("int4").status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.message().find("none, int8_per_channel"), absl::string_view::npos);
  EXPECT_EQ(BlobQuantizationName(BlobQuantization::kInt8PerChannel), "int8_per_channel");
  EXPECT_EQ(KeyTensorName(0), "layers.0.k");
  EXPECT_EQ(ValueTensorName(12), "layers.12.v");
  EXPECT_EQ(SrcTensorName(3), "layers.3.src");
  EXPECT_EQ(KeyScaleTensorName(1), "layers.1.k_scale");
  EXPECT_EQ(ValueScaleTensorName(1), "layers.1.v_scale");
}

}  // namespace
}  // namespace ctxmem::blob
