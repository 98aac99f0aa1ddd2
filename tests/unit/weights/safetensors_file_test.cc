#include "common/weights/safetensors_file.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/weights/float16.h"
#include "tests/unit/weights/test_files.h"

namespace ctxmem::weights {
namespace {

using testing::SafetensorsWriter;
using testing::TempDir;

const std::vector<float> kBase = {-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f};

absl::StatusOr<std::unique_ptr<SafetensorsFile>> OpenBytes(const TempDir& dir,
                                                           const std::string& bytes,
                                                           const std::string& name = "t.st") {
  const std::string path = dir.File(name);
  if (!testing::WriteBytes(path, bytes)) return absl::InternalError("cannot write " + path);
  return SafetensorsFile::Open(path);
}

std::vector<float> ReadAll(const SafetensorsFile& file, const std::string& name) {
  const StTensorInfo* info = file.Find(name);
  if (info == nullptr) {
    ADD_FAILURE() << "no tensor " << name;
    return {};
  }
  std::vector<float> out(static_cast<size_t>(info->n_elements));
  absl::Status status = file.ReadF32(*info, out.data());
  if (!status.ok()) ADD_FAILURE() << status;
  return out;
}

SafetensorsWriter MixedWriter() {
  SafetensorsWriter w;
  w.AddMetadata("format", "pt");
  w.AddTensorF32("f32", {2, 3}, kBase);
  std::string f16, bf16, f64, i32;
  for (float v : kBase) {
    testing::Put<uint16_t>(&f16, FloatToHalf(v));
    testing::Put<uint16_t>(&bf16, FloatToBFloat16(v));
    testing::Put<double>(&f64, v);
  }
  for (int32_t i = 0; i < 6; ++i) testing::Put<int32_t>(&i32, i);
  w.AddTensor("f16", "F16", {6}, f16);
  w.AddTensor("bf16", "BF16", {3, 2}, bf16);
  w.AddTensor("f64", "F64", {1, 6}, f64);
  w.AddTensor("i32", "I32", {6}, i32);
  w.AddTensor("u8", "U8", {3}, "abc");
  w.AddTensor("empty", "F32", {0}, "");
  return w;
}

TEST(SafetensorsFileTest, DtypeNameTableRoundTrips) {
  for (StDtype d : {StDtype::kF32, StDtype::kF16, StDtype::kBF16, StDtype::kF64, StDtype::kI64,
                    StDtype::kI32, StDtype::kI16, StDtype::kI8, StDtype::kU8, StDtype::kBool}) {
    EXPECT_EQ(*ParseStDtype(StDtypeName(d)), d);
  }
  EXPECT_EQ(StDtypeBytes(StDtype::kBF16), 2);
  EXPECT_EQ(StDtypeBytes(StDtype::kF64), 8);
  EXPECT_EQ(StDtypeBytes(StDtype::kBool), 1);
  absl::Status bad = ParseStDtype("F8_E4M3").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("F8_E4M3"), absl::string_view::npos);
  EXPECT_NE(bad.message().find("BF16"), absl::string_view::npos);  // lists the known names
}

TEST(SafetensorsFileTest, ReadsTensorsOfEveryFloatDtype) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = OpenBytes(dir, MixedWriter().Build());
  ASSERT_TRUE(file.ok()) << file.status();
  const SafetensorsFile& f = **file;
  ASSERT_EQ(f.tensors().size(), 7u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  for (size_t i = 1; i < f.tensors().size(); ++i) {
    EXPECT_LE(f.tensors()[i - 1].begin, f.tensors()[i].begin);  // file order
  }
  const StTensorInfo* bf16 = f.Find("bf16");
  ASSERT_NE(bf16, nullptr);
  EXPECT_EQ(bf16->dtype, StDtype::kBF16);
  EXPECT_EQ(bf16->shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(bf16->n_elements, 6);
  EXPECT_EQ(bf16->n_bytes, 12u);
  for (const char* name : {"f32", "f16", "bf16", "f64"}) {
    EXPECT_EQ(ReadAll(f, name), kBase) << name;
  }
  const StTensorInfo* u8 = f.Find("u8");
  ASSERT_NE(u8, nullptr);
  EXPECT_EQ(std::memcmp(f.TensorData(*u8), "abc", 3), 0);
  float dst[6];
  absl::Status not_float = f.ReadF32(*f.Find("i32"), dst);
  EXPECT_EQ(not_float.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(not_float.message().find("'i32'"), absl::string_view::npos) << not_float;
  EXPECT_TRUE(ReadAll(f, "empty").empty());
  EXPECT_EQ(f.Find("nope"), nullptr);
}

// tests/data/weights/reference.safetensors was written by the `safetensors` Python package.
TEST(SafetensorsFileTest, ReadsFileWrittenByPythonSafetensors) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::Open(testing::WeightsDataDir() + "/reference.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  const SafetensorsFile& f = **file;
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("producer"), "make_weights_goldens.py");
  for (const char* name : {"f32", "f16", "bf16", "f64"}) {
    ASSERT_NE(f.Find(name), nullptr) << name;
    EXPECT_EQ(f.Find(name)->shape, (std::vector<int64_t>{2, 3})) << name;
    EXPECT_EQ(ReadAll(f, name), kBase) << name;
  }
  const StTensorInfo* i32 = f.Find("i32");
  ASSERT_NE(i32, nullptr);
  EXPECT_EQ(i32->dtype, StDtype::kI32);
  for (int i = 0; i < 6; ++i) {
    int32_t v;
    std::memcpy(&v, f.TensorData(*i32) + 4 * i, sizeof(v));
    EXPECT_EQ(v, i);
  }
  ASSERT_NE(f.Find("scalar"), nullptr);
  EXPECT_TRUE(f.Find("scalar")->shape.empty());
  EXPECT_EQ(ReadAll(f, "scalar"), (std::vector<float>{3.25f}));
  ASSERT_NE(f.Find("empty"), nullptr);
  EXPECT_EQ(f.Find("empty")->shape, (std::vector<int64_t>{0, 3}));
}

void ExpectInvalid(const std::string& bytes, const std::string& needle) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = OpenBytes(dir, bytes);
  ASSERT_FALSE(file.ok()) << "expected an error mentioning " << needle;
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument) << file.status();
  EXPECT_NE(file.status().message().find(needle), absl::string_view::npos) << file.status();
  EXPECT_NE(file.status().message().find(dir.File("t.st")), absl::string_view::npos)
      << file.status();
}

std::string Entry(const std::string& name, const std::string& body) {
  return "\"" + name + "\":{" + body + "}";
}

TEST(SafetensorsFileTest, RejectsMalformedFiles) {
  const std::string data(24, '\0');
  auto with_header = [&](const std::string& header) {
    return SafetensorsWriter::Assemble(header, data);
  };
  ExpectInvalid("", "too small");
  ExpectInvalid("1234567", "too small");
  std::string huge_len = MixedWriter().Build();
  const uint64_t big = 1ull << 40;
  std::memcpy(huge_len.data(), &big, 8);
  ExpectInvalid(huge_len, "header length");
  ExpectInvalid(with_header("{not json"), "not a JSON object");
  ExpectInvalid(with_header("[1,2]"), "not a JSON object");
  ExpectInvalid(with_header("{\"a\":5}"), "tensor 'a'");
  ExpectInvalid(with_header("{" + Entry("a", R"("dtype":"F32","shape":[2,3])") + "}"),
                "data_offsets");
  ExpectInvalid(
      with_header("{" + Entry("a", R"("dtype":"Q4","shape":[6],"data_offsets":[0,24])") + "}"),
      "unsupported safetensors dtype 'Q4'");
  ExpectInvalid(
      with_header("{" + Entry("a", R"("dtype":"F32","shape":[5],"data_offsets":[0,24])") + "}"),
      "needs 5 x 4 bytes");
  ExpectInvalid(
      with_header("{" + Entry("a", R"("dtype":"F32","shape":[-6],"data_offsets":[0,24])") + "}"),
      "non-negative");
  ExpectInvalid(
      with_header("{" + Entry("a", R"("dtype":"F32","shape":[6.0],"data_offsets":[0,24])") + "}"),
      "non-negative");
  ExpectInvalid(
      with_header("{" + Entry("a", R"("dtype":"F32","shape":[6],"data_offsets":[4,28])") + "}"),
      "not inside");
  ExpectInvalid(
      with_header("{" + Entry("a", R"("dtype":"F32","shape":[0],"data_offsets":[8,4])") + "}"),
      "not inside");
  ExpectInvalid(
      with_header("{" + Entry("a", R"("dtype":"F32","shape":[6],"data_offsets":[-1,23])") + "}"),
      "data_offsets");
  ExpectInvalid(
      with_header(
          "{" +
          Entry("a", R"("dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,24])") +
          "}"),
      "overflow");
  ExpectInvalid(with_header("{" +
                            Entry("a", R"("dtype":"F64","shape":[4611686018427387904],)"
                                       R"("data_offsets":[0,24])") +
                            "}"),
                "needs");
  ExpectInvalid(
      with_header("{" + Entry("a", R"("dtype":"F32","shape":[4],"data_offsets":[0,16])") + "," +
                  Entry("b", R"("dtype":"F32","shape":[2],"data_offsets":[8,16])") + "}"),
      "overlap");
  ExpectInvalid(with_header(R"({"__metadata__":{"k":1}})"), "__metadata__");
  ExpectInvalid(with_header(R"({"__metadata__":[1]})"), "__metadata__");
}

TEST(SafetensorsFileTest, MissingFileIsNotFound) {
  TempDir dir;
  EXPECT_EQ(SafetensorsFile::Open(dir.File("no.safetensors")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(SafetensorsCheckpointTest, OpensSingleFileFolder) {
  TempDir dir;
  ASSERT_TRUE(testing::WriteBytes(dir.File("model.safetensors"), MixedWriter().Build()));
  absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> ckpt =
      SafetensorsCheckpoint::Open(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ((*ckpt)->TensorNames(),
            (std::vector<std::string>{"bf16", "empty", "f16", "f32", "f64", "i32", "u8"}));
  std::vector<int64_t> shape;
  absl::StatusOr<std::vector<float>> bf16 = (*ckpt)->ReadF32("bf16", &shape);
  ASSERT_TRUE(bf16.ok()) << bf16.status();
  EXPECT_EQ(*bf16, kBase);
  EXPECT_EQ(shape, (std::vector<int64_t>{3, 2}));
  SafetensorsCheckpoint::Entry entry = (*ckpt)->Find("f16");
  ASSERT_NE(entry.file, nullptr);
  EXPECT_EQ(entry.info->name, "f16");
  EXPECT_EQ((*ckpt)->Find("nope").file, nullptr);
  absl::Status missing = (*ckpt)->ReadF32("nope", nullptr).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.message().find("'nope'"), absl::string_view::npos);
  EXPECT_EQ((*ckpt)->ReadF32("i32", nullptr).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SafetensorsCheckpointTest, OpensShardedFolder) {
  TempDir dir;
  SafetensorsWriter a, b;
  a.AddTensorF32("w.0", {2}, {1, 2});
  a.AddTensorF32("w.1", {1}, {3});
  b.AddTensorF32("w.2", {3}, {4, 5, 6});
  b.AddTensorF32("unlisted", {1}, {0});
  ASSERT_TRUE(testing::WriteBytes(dir.File("model-00001-of-00002.safetensors"), a.Build()));
  ASSERT_TRUE(testing::WriteBytes(dir.File("model-00002-of-00002.safetensors"), b.Build()));
  ASSERT_TRUE(testing::WriteBytes(dir.File("model.safetensors.index.json"), R"({
    "metadata": {"total_size": 24},
    "weight_map": {"w.0": "model-00001-of-00002.safetensors",
                   "w.1": "model-00001-of-00002.safetensors",
                   "w.2": "model-00002-of-00002.safetensors"}})"));
  absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> ckpt =
      SafetensorsCheckpoint::Open(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ((*ckpt)->TensorNames(), (std::vector<std::string>{"w.0", "w.1", "w.2"}));
  std::vector<int64_t> shape;
  EXPECT_EQ(*(*ckpt)->ReadF32("w.2", &shape), (std::vector<float>{4, 5, 6}));
  EXPECT_EQ(shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(*(*ckpt)->ReadF32("w.1", nullptr), (std::vector<float>{3}));
  EXPECT_NE((*ckpt)->Find("w.0").file, (*ckpt)->Find("w.2").file);
}

void ExpectCheckpointError(const std::string& index, absl::StatusCode code,
                           const std::string& needle) {
  TempDir dir;
  SafetensorsWriter a;
  a.AddTensorF32("w.0", {2}, {1, 2});
  ASSERT_TRUE(testing::WriteBytes(dir.File("a.safetensors"), a.Build()));
  ASSERT_TRUE(testing::WriteBytes(dir.File("model.safetensors.index.json"), index));
  absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> ckpt =
      SafetensorsCheckpoint::Open(dir.path());
  ASSERT_FALSE(ckpt.ok()) << index;
  EXPECT_EQ(ckpt.status().code(), code) << ckpt.status();
  EXPECT_NE(ckpt.status().message().find(needle), absl::string_view::npos) << ckpt.status();
}

TEST(SafetensorsCheckpointTest, RejectsBadIndexes) {
  using absl::StatusCode;
  ExpectCheckpointError("{", StatusCode::kInvalidArgument, "not a JSON object");
  ExpectCheckpointError("{}", StatusCode::kInvalidArgument, "weight_map");
  ExpectCheckpointError(R"({"weight_map": {"w.0": 3}})", StatusCode::kInvalidArgument, "'w.0'");
  ExpectCheckpointError(R"({"weight_map": {"w.0": "../a.safetensors"}})",
                        StatusCode::kInvalidArgument, "same folder");
  ExpectCheckpointError(R"({"weight_map": {"w.0": "/etc/passwd"}})", StatusCode::kInvalidArgument,
                        "same folder");
  ExpectCheckpointError(R"({"weight_map": {"w.9": "a.safetensors"}})", StatusCode::kInvalidArgument,
                        "no such tensor");
  ExpectCheckpointError(R"({"weight_map": {"w.0": "b.safetensors"}})", StatusCode::kNotFound,
                        "b.safetensors");
}

TEST(SafetensorsCheckpointTest, EmptyFolderIsNotFound) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> ckpt =
      SafetensorsCheckpoint::Open(dir.path());
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(ckpt.status().message().find(dir.path()), absl::string_view::npos);
  EXPECT_EQ(SafetensorsCheckpoint::Open(dir.File("nonexistent")).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ctxmem::weights
