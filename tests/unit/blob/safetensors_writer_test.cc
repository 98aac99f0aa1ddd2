#include "common/blob/safetensors_writer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/blob/atomic_file.h"
#include "common/weights/safetensors_file.h"
#include "tests/unit/blob/test_blob.h"

namespace ctxmem::blob {
namespace {

using testing::ListFiles;
using testing::PatternBytes;
using testing::ReadBytes;
using testing::TempDir;
using weights::SafetensorsFile;
using weights::StDtype;

constexpr StDtype kAllDtypes[] = {StDtype::kF32, StDtype::kF16, StDtype::kBF16, StDtype::kF64,
                                  StDtype::kI64, StDtype::kI32, StDtype::kI16,  StDtype::kI8,
                                  StDtype::kU8,  StDtype::kBool};

uint64_t HeaderLength(const std::string& header) {
  uint64_t n = 0;
  std::memcpy(&n, header.data(), 8);
  return n;
}

TEST(SafetensorsWriterTest, RoundTripsEveryDtypeThroughTheReader) {
  TempDir dir;
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<RawTensor> tensors;
  int salt = 0;
  for (StDtype dtype : kAllDtypes) {
    // Odd element counts so that narrow dtypes would misalign the wider ones if unsorted.
    buffers.push_back(PatternBytes(dtype, 3 * 5, salt));
    tensors.push_back({absl::StrCat("t.", std::string(weights::StDtypeName(dtype))),
                       dtype,
                       {3, 5},
                       buffers.back().data()});
    ++salt;
  }
  auto layout = SafetensorsLayout::Build(tensors, {{"k1", "v1"}, {"k2", "v2"}});
  ASSERT_TRUE(layout.ok()) << layout.status();
  const std::string path = dir.File("all.safetensors");
  ASSERT_TRUE(layout->WriteToFile(path).ok());
  EXPECT_EQ(ReadBytes(path), layout->ToBytes());

  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->metadata().at("k1"), "v1");
  EXPECT_EQ((*file)->metadata().at("k2"), "v2");
  ASSERT_EQ((*file)->tensors().size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const weights::StTensorInfo* info = (*file)->Find(tensors[i].name);
    ASSERT_NE(info, nullptr) << tensors[i].name;
    EXPECT_EQ(info->dtype, tensors[i].dtype);
    EXPECT_EQ(info->shape, tensors[i].shape);
    ASSERT_EQ(info->n_bytes, buffers[i].size());
    EXPECT_EQ(std::memcmp((*file)->TensorData(*info), buffers[i].data(), buffers[i].size()), 0)
        << tensors[i].name;
    // Wider dtypes come first, so every tensor is aligned to its element width.
    EXPECT_EQ(info->begin % weights::StDtypeBytes(info->dtype), 0u) << tensors[i].name;
  }
}

TEST(SafetensorsWriterTest, HeaderIsPaddedWithSpacesToEightBytes) {
  for (int n_meta = 0; n_meta < 9; ++n_meta) {
    MetadataEntries metadata;
    for (int i = 0; i < n_meta; ++i) metadata.push_back({std::string(i + 1, 'k'), "v"});
    auto layout = SafetensorsLayout::Build({}, metadata).value();
    const std::string& header = layout.header();
    ASSERT_EQ(header.size() % 8, 0u);
    EXPECT_EQ(HeaderLength(header), header.size() - 8);
    const size_t close = header.rfind('}');
    EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos);
    EXPECT_LT(header.size() - 1 - close, 8u);
    EXPECT_EQ(layout.total_bytes(), header.size());
  }
}

TEST(SafetensorsWriterTest, OrderIsWidthThenNameAndTensorsAreContiguous) {
  std::vector<uint8_t> bytes(64, 1);
  std::vector<RawTensor> tensors = {{"b", StDtype::kI8, {3}, bytes.data()},
                                    {"a", StDtype::kI8, {1}, bytes.data()},
                                    {"c", StDtype::kF32, {2}, bytes.data()},
                                    {"d", StDtype::kI64, {1}, bytes.data()}};
  auto layout = SafetensorsLayout::Build(tensors, {}).value();
  std::vector<std::string> order;
  for (const RawTensor& t : layout.tensors()) order.push_back(t.name);
  EXPECT_EQ(order, (std::vector<std::string>{"d", "c", "a", "b"}));
  EXPECT_EQ(layout.data_bytes(), 8u + 8u + 1u + 3u);
  EXPECT_NE(layout.header().find("\"a\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[16,17]}"),
            std::string::npos);
}

TEST(SafetensorsWriterTest, ScalarsAndEmptyTensorsRoundTrip) {
  TempDir dir;
  const float scalar = 2.5f;
  std::vector<RawTensor> tensors = {{"scalar", StDtype::kF32, {}, &scalar},
                                    {"empty", StDtype::kBF16, {0, 4}, nullptr}};
  const std::string path = dir.File("s.safetensors");
  ASSERT_TRUE(SafetensorsLayout::Build(tensors, {}).value().WriteToFile(path).ok());
  auto file = SafetensorsFile::Open(path).value();
  const weights::StTensorInfo* info = file->Find("scalar");
  ASSERT_NE(info, nullptr);
  EXPECT_TRUE(info->shape.empty());
  float got = 0;
  ASSERT_TRUE(file->ReadF32(*info, &got).ok());
  EXPECT_EQ(got, 2.5f);
  ASSERT_NE(file->Find("empty"), nullptr);
  EXPECT_EQ(file->Find("empty")->n_bytes, 0u);
}

TEST(SafetensorsWriterTest, MetadataWithSpecialCharactersRoundTrips) {
  TempDir dir;
  const std::string tricky = "quote\" backslash\\ newline\n tab\t nul-ish\x01 unicode é ✓ 😀";
  const std::string json_value = R"({"a": [1, 2.5, "x"], "b": {"c": null}})";
  const std::string path = dir.File("m.safetensors");
  ASSERT_TRUE(SafetensorsLayout::Build({}, {{"tricky", tricky}, {"json", json_value}, {"", ""}})
                  .value()
                  .WriteToFile(path)
                  .ok());
  auto file = SafetensorsFile::Open(path).value();
  EXPECT_EQ(file->metadata().at("tricky"), tricky);
  EXPECT_EQ(file->metadata().at("json"), json_value);
  EXPECT_EQ(file->metadata().at(""), "");
}

TEST(SafetensorsWriterTest, RejectsBadInput) {
  uint8_t byte = 0;
  auto code = [](std::vector<RawTensor> tensors, MetadataEntries metadata = {}) {
    return SafetensorsLayout::Build(std::move(tensors), std::move(metadata)).status().code();
  };
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(code({{"", StDtype::kU8, {1}, &byte}}), kInvalid);
  EXPECT_EQ(code({{"__metadata__", StDtype::kU8, {1}, &byte}}), kInvalid);
  EXPECT_EQ(code({{"a", StDtype::kU8, {1}, &byte}, {"a", StDtype::kU8, {1}, &byte}}), kInvalid);
  EXPECT_EQ(code({{"bad\xff", StDtype::kU8, {1}, &byte}}), kInvalid);
  EXPECT_EQ(code({{"neg", StDtype::kU8, {-1}, &byte}}), kInvalid);
  EXPECT_EQ(code({{"null", StDtype::kU8, {1}, nullptr}}), kInvalid);
  EXPECT_EQ(code({{"huge", StDtype::kF64, {1ll << 40, 1ll << 40}, &byte}}), kInvalid);
  EXPECT_EQ(code({}, {{"k", "1"}, {"k", "2"}}), kInvalid);
  EXPECT_EQ(code({}, {{"k", "\xc0\x80"}}), kInvalid);  // overlong NUL
  EXPECT_EQ(code({}, {{"k", std::string(SafetensorsLayout::kMaxHeaderBytes, 'x')}}), kInvalid);
}

TEST(SafetensorsWriterTest, ReplaceMetadataValueKeepsTheLayout) {
  auto layout = SafetensorsLayout::Build({}, {{"a", "0000"}, {"b", "xy"}}).value();
  const int64_t offset = layout.MetadataValueOffset("a");
  ASSERT_GT(offset, 8);
  EXPECT_EQ(layout.header().substr(offset, 4), "0000");
  const size_t size = layout.header().size();
  ASSERT_TRUE(layout.ReplaceMetadataValue("a", "beef").ok());
  EXPECT_EQ(layout.header().substr(offset, 4), "beef");
  EXPECT_EQ(layout.header().size(), size);
  EXPECT_EQ(layout.ReplaceMetadataValue("a", "toolong").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(layout.ReplaceMetadataValue("b", "\n").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(layout.ReplaceMetadataValue("zz", "beef").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(layout.MetadataValueOffset("zz"), -1);
}

TEST(SafetensorsWriterTest, FailedWriteLeavesNothingVisible) {
  TempDir dir;
  std::vector<uint8_t> bytes = PatternBytes(StDtype::kF32, 100, 0);
  auto layout =
      SafetensorsLayout::Build({{"t", StDtype::kF32, {100}, bytes.data()}}, {{"k", "v"}}).value();
  for (uint64_t limit : {uint64_t{0}, uint64_t{5}, layout.header().size() + 17}) {
    auto file = AtomicFile::Create(dir.File("x.safetensors")).value();
    file->ForTesting_SetFault({.fail_after_bytes = static_cast<int64_t>(limit)});
    EXPECT_FALSE(layout.AppendTo(file.get()).ok());
    file.reset();
    EXPECT_TRUE(ListFiles(dir.path()).empty()) << limit;
  }
}

TEST(SafetensorsWriterTest, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("ascii é ✓ 😀"));
  EXPECT_FALSE(IsValidUtf8("\x80"));
  EXPECT_FALSE(IsValidUtf8("\xe2\x9c"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // overlong
}

}  // namespace
}  // namespace ctxmem::blob
