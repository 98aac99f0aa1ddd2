#include "common/learned/learned_method.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "common/blob/safetensors_writer.h"
#include "common/compress/compression_config.h"
#include "common/compress/config_json.h"
#include "common/compress/pruner_registry.h"
#include "tests/unit/test_files.h"

namespace ctxmem::learned {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// A 2-layer perceiver file (query_len 2, d_query 4, d_model 4) with values offset by `shift`.
void WritePerceiver(const std::string& path, float shift) {
  std::vector<at::Tensor> keep;
  std::vector<blob::RawTensor> tensors;
  for (int l = 0; l < 2; ++l) {
    for (const char* name : {"query", "wq.weight", "wk.weight"}) {
      at::Tensor t = (at::arange(16, at::kFloat).reshape({4, 4}) * 0.1 + shift + l).contiguous();
      if (std::string(name) == "query") t = t.narrow(0, 0, 2).contiguous();
      keep.push_back(t);
      tensors.push_back({"layers." + std::to_string(l) + "." + name,
                         weights::StDtype::kF32,
                         {t.size(0), t.size(1)},
                         t.data_ptr()});
    }
  }
  auto layout = blob::SafetensorsLayout::Build(std::move(tensors), {});
  ASSERT_TRUE(layout.ok());
  ASSERT_TRUE(layout->WriteToFile(path).ok());
}

TEST(LearnedMethodTest, RegistersANamedMethodIdentifiedByContent) {
  ctxmem::testing::TempDir dir;
  WritePerceiver(dir.File("a.safetensors"), 0);
  ASSERT_TRUE(RegisterLearned("lm_test_a", dir.File("a.safetensors")).ok());
  const compress::PrunerRegistry& r = compress::PrunerRegistry::Global();
  EXPECT_TRUE(r.Check("lm_test_a").ok());
  EXPECT_THAT(r.ContentId("lm_test_a"), StartsWith("sha256:"));
  EXPECT_EQ(r.ContentId("tova"), "");
  compress::CompressionConfig c;
  c.pruner = "lm_test_a";
  ASSERT_TRUE(c.Validate().ok());
  auto pruner = r.Create(c);
  ASSERT_TRUE(pruner.ok()) << pruner.status();
  EXPECT_EQ((*pruner)->name(), "perceiver");
  const std::string json = compress::CompressionConfigToJson(c).dump();
  EXPECT_THAT(json, HasSubstr(r.ContentId("lm_test_a")));
  EXPECT_THAT(json, ::testing::Not(HasSubstr(dir.path())));

  // The same bytes elsewhere: the same content id; other bytes: another one.
  std::filesystem::copy_file(dir.File("a.safetensors"), dir.File("copy.safetensors"));
  WritePerceiver(dir.File("b.safetensors"), 1);
  EXPECT_EQ(*WeightsContentId(dir.File("copy.safetensors")), r.ContentId("lm_test_a"));
  EXPECT_NE(*WeightsContentId(dir.File("b.safetensors")), r.ContentId("lm_test_a"));
  EXPECT_TRUE(RegisterLearned("lm_test_a", dir.File("copy.safetensors")).ok());  // same content
  EXPECT_EQ(RegisterLearned("lm_test_a", dir.File("b.safetensors")).code(),
            absl::StatusCode::kAlreadyExists);
}

TEST(LearnedMethodTest, PerceiverConfigsAreNamedByTheirWeightsContent) {
  ctxmem::testing::TempDir dir;
  WritePerceiver(dir.File("a.safetensors"), 0);
  std::filesystem::copy_file(dir.File("a.safetensors"), dir.File("moved.safetensors"));
  compress::CompressionConfig a, b;
  a.pruner = b.pruner = "perceiver";
  a.perceiver_weights = dir.File("a.safetensors");
  b.perceiver_weights = dir.File("moved.safetensors");
  EXPECT_EQ(compress::CompressionConfigToJson(a), compress::CompressionConfigToJson(b));
  WritePerceiver(dir.File("a.safetensors"), 2);  // retrained in place
  EXPECT_NE(compress::CompressionConfigToJson(a), compress::CompressionConfigToJson(b));
}

TEST(LearnedMethodTest, RejectsBadNamesFilesAndTakenNames) {
  ctxmem::testing::TempDir dir;
  WritePerceiver(dir.File("a.safetensors"), 0);
  EXPECT_EQ(RegisterLearned("Bad-Name", dir.File("a.safetensors")).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RegisterLearned("tova", dir.File("a.safetensors")).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(RegisterLearned("lm_test_missing", dir.File("none.safetensors")).code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(ctxmem::testing::WriteBytes(dir.File("junk.safetensors"), "junk"));
  EXPECT_FALSE(RegisterLearned("lm_test_junk", dir.File("junk.safetensors")).ok());
  EXPECT_FALSE(compress::PrunerRegistry::Global().Check("lm_test_junk").ok());
  EXPECT_EQ(RegisterLearnedSpec("no_equals_sign").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RegisterLearnedSpec("=file").code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ctxmem::learned
