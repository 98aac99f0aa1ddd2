#include "common/weights/gguf_file.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "common/weights/float16.h"
#include "tests/unit/weights/test_files.h"

namespace ctxmem::weights {
namespace {

using testing::GgufArrayBytes;
using testing::GgufStr;
using testing::GgufU32;
using testing::GgufWriter;
using testing::TempDir;
using VT = GgufValueType;

absl::StatusOr<std::unique_ptr<GgufFile>> OpenBytes(const TempDir& dir, const std::string& bytes,
                                                    const std::string& name = "t.gguf") {
  const std::string path = dir.File(name);
  if (!testing::WriteBytes(path, bytes)) return absl::InternalError("cannot write " + path);
  return GgufFile::Open(path);
}

std::string HalfBytes(const std::vector<float>& values) {
  std::string out;
  for (float v : values) testing::Put<uint16_t>(&out, FloatToHalf(v));
  return out;
}

// One value of every GGUF type, plus arrays (nested too).
GgufWriter MetadataWriter() {
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddScalar<uint8_t>("t.u8", VT::kUint8, 200);
  w.AddScalar<int8_t>("t.i8", VT::kInt8, -100);
  w.AddScalar<uint16_t>("t.u16", VT::kUint16, 60000);
  w.AddScalar<int16_t>("t.i16", VT::kInt16, -30000);
  w.AddScalar<uint32_t>("t.u32", VT::kUint32, 4000000000u);
  w.AddScalar<int32_t>("t.i32", VT::kInt32, -2000000000);
  w.AddScalar<float>("t.f32", VT::kFloat32, 1.5f);
  w.AddScalar<uint8_t>("t.bool", VT::kBool, 1);
  w.AddScalar<uint64_t>("t.u64", VT::kUint64, 1ull << 40);
  w.AddScalar<int64_t>("t.i64", VT::kInt64, -(1ll << 40));
  w.AddScalar<double>("t.f64", VT::kFloat64, 0.25);
  w.AddScalar<uint64_t>("t.u64_big", VT::kUint64, ~0ull);
  w.AddStringArray("t.strs", {"a", "", "ccc"});
  w.AddArray<int32_t>("t.ints", VT::kInt32, {1, -2, 3});
  w.AddArray<float>("t.floats", VT::kFloat32, {0.5f, -1.0f});
  w.AddArray<uint8_t>("t.bools", VT::kBool, {1, 0});
  // [[1, 2], []] as arrays of u16.
  std::string inner = GgufArrayBytes(VT::kUint16, 2, std::string("\x01\x00\x02\x00", 4)) +
                      GgufArrayBytes(VT::kUint16, 0, "");
  w.AddRaw("t.nested", VT::kArray, GgufArrayBytes(VT::kArray, 2, inner));
  return w;
}

TEST(GgufFileTest, ReadsEveryMetadataType) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<GgufFile>> file = OpenBytes(dir, MetadataWriter().Build());
  ASSERT_TRUE(file.ok()) << file.status();
  const GgufFile& f = **file;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  ASSERT_EQ(f.keys().size(), 18u);
  EXPECT_EQ(f.keys()[0], "general.architecture");
  EXPECT_EQ(f.keys()[17], "t.nested");
  EXPECT_EQ(*f.GetString("general.architecture"), "llama");
  EXPECT_EQ(*f.GetInt("t.u8"), 200);
  EXPECT_EQ(*f.GetInt("t.i8"), -100);
  EXPECT_EQ(*f.GetInt("t.u16"), 60000);
  EXPECT_EQ(*f.GetInt("t.i16"), -30000);
  EXPECT_EQ(*f.GetInt("t.u32"), 4000000000ll);
  EXPECT_EQ(*f.GetInt("t.i32"), -2000000000);
  EXPECT_EQ(*f.GetInt("t.u64"), 1ll << 40);
  EXPECT_EQ(*f.GetInt("t.i64"), -(1ll << 40));
  EXPECT_EQ(*f.GetFloat("t.f32"), 1.5);
  EXPECT_EQ(*f.GetFloat("t.f64"), 0.25);
  EXPECT_EQ(*f.GetFloat("t.i32"), -2e9);  // integers widen to double
  EXPECT_TRUE(*f.GetBool("t.bool"));
  EXPECT_EQ(f.Find("t.u8")->type_id, 0u);
  EXPECT_EQ(f.Find("t.f64")->type_id, 12u);
  EXPECT_EQ(f.Find("t.strs")->type_id, 9u);
  EXPECT_EQ(*f.GetStringArray("t.strs"), (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(*f.GetIntArray("t.ints"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(*f.GetFloatArray("t.floats"), (std::vector<double>{0.5, -1.0}));
  EXPECT_EQ(*f.GetFloatArray("t.ints"), (std::vector<double>{1, -2, 3}));
  const GgufArray& bools = std::get<GgufArray>(f.Find("t.bools")->value);
  ASSERT_EQ(bools.size(), 2u);
  EXPECT_TRUE(std::get<bool>(bools[0].value));
  EXPECT_FALSE(std::get<bool>(bools[1].value));
  const GgufArray& nested = std::get<GgufArray>(f.Find("t.nested")->value);
  ASSERT_EQ(nested.size(), 2u);
  const GgufArray& first = std::get<GgufArray>(nested[0].value);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[1].type_id, 2u);
  EXPECT_EQ(std::get<uint64_t>(first[1].value), 2u);
  EXPECT_TRUE(std::get<GgufArray>(nested[1].value).empty());
  EXPECT_TRUE(f.tensors().empty());
}

TEST(GgufFileTest, TypedGettersReportMissingAndMistypedKeys) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<GgufFile>> file = OpenBytes(dir, MetadataWriter().Build());
  ASSERT_TRUE(file.ok()) << file.status();
  const GgufFile& f = **file;
  EXPECT_EQ(f.Find("nope"), nullptr);
  absl::Status missing = f.GetInt("nope").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.message().find("'nope'"), absl::string_view::npos) << missing;
  EXPECT_NE(missing.message().find(f.path()), absl::string_view::npos) << missing;
  absl::Status wrong = f.GetInt("general.architecture").status();
  EXPECT_EQ(wrong.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wrong.message().find("general.architecture"), absl::string_view::npos) << wrong;
  EXPECT_NE(wrong.message().find("string"), absl::string_view::npos) << wrong;
  EXPECT_EQ(f.GetInt("t.u64_big").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.GetString("t.u8").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.GetBool("t.u8").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.GetFloat("t.strs").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.GetStringArray("t.ints").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.GetIntArray("t.floats").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.GetIntArray("t.u8").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(f.GetStringArray("nope").status().code(), absl::StatusCode::kNotFound);
}

GgufWriter TensorWriter() {
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddTensorF32("a", {2, 3}, {1, 2, 3, 4, 5, 6});
  w.AddTensor("h", GgmlType::kF16, {4}, HalfBytes({0.5f, -2.0f, 65504.0f, 0.0f}));
  // Two q8_0 rows of 32: d = 1/64 and q = j - 16.
  std::string q8;
  for (int row = 0; row < 2; ++row) {
    testing::Put<uint16_t>(&q8, FloatToHalf(1.0f / 64));
    for (int j = 0; j < 32; ++j) q8.push_back(static_cast<char>(j - 16 + row));
  }
  w.AddTensor("q", GgmlType::kQ8_0, {2, 32}, q8);
  w.AddTensorF32("scalar", {}, {7.0f});
  w.AddTensorF32("empty", {0, 4}, {});
  return w;
}

TEST(GgufFileTest, ReadsTensorInfosAndData) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<GgufFile>> file = OpenBytes(dir, TensorWriter().Build());
  ASSERT_TRUE(file.ok()) << file.status();
  const GgufFile& f = **file;
  ASSERT_EQ(f.tensors().size(), 5u);
  EXPECT_EQ(f.data_offset() % 32, 0u);
  const GgufTensorInfo* a = f.FindTensor("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a->n_elements, 6);
  EXPECT_EQ(a->n_bytes, 24u);
  EXPECT_EQ(a->type, GgmlType::kF32);
  EXPECT_EQ(a->offset, f.data_offset());
  EXPECT_EQ(*f.ReadTensorF32("a"), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  float first;
  std::memcpy(&first, f.TensorData(*a), sizeof(first));
  EXPECT_EQ(first, 1.0f);

  const GgufTensorInfo* h = f.FindTensor("h");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->offset % 32, 0u);
  EXPECT_EQ(*f.ReadTensorF32("h"), (std::vector<float>{0.5f, -2.0f, 65504.0f, 0.0f}));

  const GgufTensorInfo* q = f.FindTensor("q");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->shape, (std::vector<int64_t>{2, 32}));
  EXPECT_EQ(q->n_bytes, 68u);
  std::vector<float> qv = *f.ReadTensorF32("q");
  ASSERT_EQ(qv.size(), 64u);
  for (int row = 0; row < 2; ++row) {
    for (int j = 0; j < 32; ++j) EXPECT_EQ(qv[row * 32 + j], (j - 16 + row) / 64.0f);
  }
  EXPECT_TRUE(f.FindTensor("scalar")->shape.empty());
  EXPECT_EQ(*f.ReadTensorF32("scalar"), (std::vector<float>{7.0f}));
  EXPECT_EQ(f.FindTensor("empty")->n_elements, 0);
  EXPECT_TRUE(f.ReadTensorF32("empty")->empty());

  absl::Status missing = f.ReadTensorF32("nope").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.message().find("'nope'"), absl::string_view::npos);
  EXPECT_EQ(f.FindTensor("nope"), nullptr);
}

TEST(GgufFileTest, HonoursGeneralAlignment) {
  TempDir dir;
  GgufWriter w = TensorWriter();
  w.SetAlignment(256);
  absl::StatusOr<std::unique_ptr<GgufFile>> file = OpenBytes(dir, w.Build());
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->alignment(), 256u);
  EXPECT_EQ((*file)->data_offset() % 256, 0u);
  for (const GgufTensorInfo& t : (*file)->tensors()) EXPECT_EQ(t.offset % 256, 0u) << t.name;
  EXPECT_EQ(*(*file)->ReadTensorF32("a"), (std::vector<float>{1, 2, 3, 4, 5, 6}));
}

TEST(GgufFileTest, AcceptsVersion2) {
  TempDir dir;
  GgufWriter w = TensorWriter();
  w.set_version(2);
  absl::StatusOr<std::unique_ptr<GgufFile>> file = OpenBytes(dir, w.Build());
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->version(), 2u);
}

TEST(GgufFileTest, MissingFileIsNotFound) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(dir.File("none.gguf"));
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
}

// Builds `bytes`, expects InvalidArgument whose message holds `needle` and the path.
void ExpectInvalid(const std::string& bytes, const std::string& needle) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<GgufFile>> file = OpenBytes(dir, bytes);
  ASSERT_FALSE(file.ok()) << "expected an error mentioning " << needle;
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument) << file.status();
  EXPECT_NE(file.status().message().find(needle), absl::string_view::npos) << file.status();
  EXPECT_NE(file.status().message().find(dir.File("t.gguf")), absl::string_view::npos)
      << file.status();
}

// Overwrites the integer field of `bytes` whose description is `what`.
std::string Patch(std::string bytes, const std::vector<testing::IntField>& fields,
                  const std::string& what, uint64_t value) {
  for (const testing::IntField& f : fields) {
    if (f.what == what) {
      std::memcpy(bytes.data() + f.pos, &value, static_cast<size_t>(f.width));
      return bytes;
    }
  }
  ADD_FAILURE() << "no field " << what;
  return bytes;
}

TEST(GgufFileTest, RejectsBadHeaders) {
  std::vector<testing::IntField> fields;
  const std::string good = TensorWriter().Build(&fields);
  ExpectInvalid("", "truncated");
  ExpectInvalid("GGU", "truncated");
  GgufWriter bad_magic = TensorWriter();
  bad_magic.set_magic(0x46554746);
  ExpectInvalid(bad_magic.Build(), "not a GGUF file");
  ExpectInvalid(Patch(good, fields, "version", 1), "version 1");
  ExpectInvalid(Patch(good, fields, "version", 4), "version 4");
  ExpectInvalid(Patch(good, fields, "version", 0x03000000), "version");
  ExpectInvalid(Patch(good, fields, "kv_count", 1ull << 60), "kv_count=");
  ExpectInvalid(Patch(good, fields, "tensor_count", ~0ull), "tensor_count=");
  ExpectInvalid(good.substr(0, good.size() / 3), "truncated");
}

TEST(GgufFileTest, RejectsBadMetadata) {
  std::vector<testing::IntField> fields;
  const std::string good = MetadataWriter().Build(&fields);
  ExpectInvalid(Patch(good, fields, "key length of t.u8", 1ull << 40), "truncated");
  ExpectInvalid(Patch(good, fields, "value type of t.u8", 13), "unknown value type 13");
  ExpectInvalid(Patch(good, fields, "string length of general.architecture", ~0ull), "truncated");
  ExpectInvalid(Patch(good, fields, "array count of t.strs", 1ull << 62), "array of");
  ExpectInvalid(Patch(good, fields, "array element type of t.ints", 99),
                "unknown array element type 99");

  GgufWriter dup;
  dup.AddString("k", "a");
  dup.AddString("k", "b");
  ExpectInvalid(dup.Build(), "duplicate key 'k'");

  // Arrays nested 20 deep.
  std::string nested = GgufArrayBytes(VT::kUint8, 0, "");
  for (int i = 0; i < 20; ++i) nested = GgufArrayBytes(VT::kArray, 1, nested);
  GgufWriter deep;
  deep.AddRaw("deep", VT::kArray, nested);
  ExpectInvalid(deep.Build(), "nested deeper");

  for (uint32_t bad : {0u, 3u, 48u, 1u << 30}) {
    GgufWriter w = TensorWriter();
    w.AddScalar<uint32_t>("general.alignment", VT::kUint32, bad);
    ExpectInvalid(w.Build(), "general.alignment");
  }
  GgufWriter string_alignment = TensorWriter();
  string_alignment.AddString("general.alignment", "32");
  ExpectInvalid(string_alignment.Build(), "general.alignment");
}

TEST(GgufFileTest, RejectsBadTensorInfos) {
  std::vector<testing::IntField> fields;
  const std::string good = TensorWriter().Build(&fields);
  ExpectInvalid(Patch(good, fields, "n_dims of a", 5), "n_dims=5");
  ExpectInvalid(Patch(good, fields, "type of a", 4), "unknown ggml type id 4");
  ExpectInvalid(Patch(good, fields, "type of h", 0xFFFFFFFF), "tensor 'h'");
  ExpectInvalid(Patch(good, fields, "ne of a", 1ull << 63), "negative");
  ExpectInvalid(Patch(good, fields, "ne of a", 1ull << 62), "overflow");
  ExpectInvalid(Patch(good, fields, "offset of a", 8), "not a multiple of the alignment");
  ExpectInvalid(Patch(good, fields, "offset of a", 1ull << 40), "data section");
  ExpectInvalid(Patch(good, fields, "offset of q", ~0ull - 31), "data section");
  ExpectInvalid(Patch(good, fields, "offset of h", 0), "overlap");
  ExpectInvalid(Patch(good, fields, "name length of q", 1ull << 50), "truncated");

  GgufWriter block;
  block.AddTensor("q", GgmlType::kQ4_0, {1, 16}, std::string(9, '\0'));
  ExpectInvalid(block.Build(), "block size 32");

  GgufWriter dup;
  dup.AddTensorF32("t", {1}, {1.0f});
  dup.AddTensorF32("t", {1}, {2.0f});
  ExpectInvalid(dup.Build(), "duplicate tensor name 't'");

  // Data cut short: the last tensor extends past the end of the file.
  ExpectInvalid(good.substr(0, good.size() - 40), "data section");
}

// --- the bundled model, against goldens from gguf-py -------------------------------------

class BundledModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = testing::BundledModelPath();
    if (!testing::FileExists(path_)) GTEST_SKIP() << "bundled model not found at " << path_;
    goldens_ = testing::LoadJson(testing::WeightsDataDir() + "/smollm2_gguf.json");
    ASSERT_FALSE(goldens_.is_discarded()) << "cannot read smollm2_gguf.json";
    absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(path_);
    ASSERT_TRUE(file.ok()) << file.status();
    file_ = *std::move(file);
    if (file_->file_size() != goldens_["file_size"].get<uint64_t>()) {
      GTEST_SKIP() << path_ << " is not the model the goldens were made from";
    }
  }

  std::string path_;
  nlohmann::json goldens_;
  std::unique_ptr<GgufFile> file_;
};

TEST_F(BundledModelTest, MetadataMatchesGgufPy) {
  const GgufFile& f = *file_;
  EXPECT_EQ(f.version(), goldens_["version"].get<uint32_t>());
  EXPECT_EQ(f.alignment(), goldens_["alignment"].get<uint64_t>());
  EXPECT_EQ(f.keys().size(), goldens_["n_kv"].get<size_t>());
  EXPECT_EQ(*f.GetInt("llama.block_count"), 30);
  EXPECT_EQ(*f.GetString("general.architecture"), "llama");
  for (const auto& [key, value] : goldens_["metadata"].items()) {
    SCOPED_TRACE(key);
    if (value.is_string()) {
      EXPECT_EQ(*f.GetString(key), value.get<std::string>());
    } else if (value.is_boolean()) {
      EXPECT_EQ(*f.GetBool(key), value.get<bool>());
    } else if (value.is_number_integer()) {
      EXPECT_EQ(*f.GetInt(key), value.get<int64_t>());
    } else {
      EXPECT_EQ(*f.GetFloat(key), value.get<double>());
    }
  }
  absl::StatusOr<std::vector<std::string>> tokens = f.GetStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ(tokens->size(), goldens_["n_tokens"].get<size_t>());
  for (size_t i = 0; i < goldens_["tokens_first"].size(); ++i) {
    EXPECT_EQ((*tokens)[i], goldens_["tokens_first"][i].get<std::string>());
  }
  EXPECT_EQ(f.GetIntArray("tokenizer.ggml.token_type")->size(), tokens->size());
}

TEST_F(BundledModelTest, TensorTableMatchesGgufPy) {
  const GgufFile& f = *file_;
  ASSERT_EQ(f.tensors().size(), 272u);
  ASSERT_EQ(f.tensors().size(), goldens_["n_tensors"].get<size_t>());
  std::map<std::string, int> type_counts;
  for (const GgufTensorInfo& t : f.tensors()) {
    SCOPED_TRACE(t.name);
    ASSERT_TRUE(goldens_["tensor_types"].contains(t.name));
    const nlohmann::json& g = goldens_["tensor_types"][t.name];
    const GgmlTypeTraits traits = *GetGgmlTypeTraits(static_cast<uint32_t>(t.type));
    std::string upper(traits.name);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(upper, g["type"].get<std::string>());
    EXPECT_EQ(t.shape, g["shape"].get<std::vector<int64_t>>());
    EXPECT_EQ(t.offset, g["offset"].get<uint64_t>());
    ++type_counts[upper];
  }
  EXPECT_EQ(type_counts["Q4_1"], 210);
  EXPECT_EQ(type_counts["Q8_0"], 1);
  EXPECT_EQ(type_counts["F32"], 61);
  EXPECT_EQ(f.FindTensor("token_embd.weight")->shape, (std::vector<int64_t>{49152, 576}));
  EXPECT_EQ(f.FindTensor("blk.0.ffn_down.weight")->shape, (std::vector<int64_t>{576, 1536}));
}

TEST_F(BundledModelTest, DequantizedRowsMatchGgufPy) {
  const GgufFile& f = *file_;
  for (const nlohmann::json& g : goldens_["tensors"]) {
    const std::string name = g["name"].get<std::string>();
    SCOPED_TRACE(name);
    const GgufTensorInfo* info = f.FindTensor(name);
    ASSERT_NE(info, nullptr);
    absl::StatusOr<std::vector<float>> all = f.ReadTensorF32(name);
    ASSERT_TRUE(all.ok()) << all.status();
    ASSERT_EQ(static_cast<int64_t>(all->size()), info->n_elements);
    const std::vector<float> want = testing::Base64Floats(g["values_f32"].get<std::string>());
    const int64_t row_len = info->shape.back();
    std::vector<int64_t> rows;
    if (g["rows"].is_null()) {
      for (int64_t r = 0; r < info->n_elements / row_len; ++r) rows.push_back(r);
    } else {
      rows = g["rows"].get<std::vector<int64_t>>();
    }
    ASSERT_EQ(want.size(), rows.size() * static_cast<size_t>(row_len));
    int mismatches = 0;
    for (size_t k = 0; k < rows.size(); ++k) {
      for (int64_t c = 0; c < row_len; ++c) {
        const float got = (*all)[static_cast<size_t>(rows[k] * row_len + c)];
        const float expected = want[k * static_cast<size_t>(row_len) + static_cast<size_t>(c)];
        if (!testing::SameFloat(got, expected) && ++mismatches <= 5) {
          ADD_FAILURE() << "row " << rows[k] << " col " << c << ": got " << got << ", gguf-py "
                        << expected;
        }
      }
    }
    EXPECT_EQ(mismatches, 0);
  }
}

}  // namespace
}  // namespace ctxmem::weights
