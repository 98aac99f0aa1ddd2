#include "common/compress/pruner_registry.h"

#include "common/compress/compression_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ctxmem::compress {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(PrunerRegistryTest, HasEverySeedPruner) {
  EXPECT_THAT(PrunerRegistry::Global().names(),
              ElementsAre("chunk_prefix", "conv", "h2o", "llm_fuser", "local_window", "mean_fuser",
                          "no_compress", "perceiver", "perceiver_fuser", "random", "rcc", "roco",
                          "snapkv", "streaming_llm", "tova"));
  for (const std::string& name : PrunerRegistry::Global().names()) {
    // Need trained weights: PerceiverWithoutWeights, fuser_training_test.
    if (name == "perceiver" || name == "perceiver_fuser" || name == "llm_fuser") continue;
    if (name == "rcc") continue;  // not a pruner: Compress() runs RccCompress (rcc_model_test)
    CompressionConfig c;
    c.pruner = name;
    auto p = PrunerRegistry::Global().Create(c);
    ASSERT_TRUE(p.ok()) << name << ": " << p.status();
    EXPECT_EQ((*p)->name(), name == "snapkv" ? "conv" : name);
  }
}

TEST(PrunerRegistryTest, UnknownNameListsTheKnownOnes) {
  CompressionConfig c;
  c.pruner = "perceiverr";
  auto p = PrunerRegistry::Global().Create(c);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("unknown pruner 'perceiverr'"));
  EXPECT_THAT(p.status().message(), HasSubstr("snapkv, streaming_llm, tova"));
}

// §3.9: registered, but without trained weights it refuses (never a silent random fallback).
TEST(PrunerRegistryTest, PerceiverWithoutWeights) {
  CompressionConfig c;
  c.pruner = "perceiver";
  EXPECT_TRUE(PrunerRegistry::Global().Check("perceiver").ok());
  auto p = PrunerRegistry::Global().Create(c);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(p.status().message(), HasSubstr("needs trained weights"));
}

TEST(PrunerRegistryTest, PassesConfigToFactories) {
  CompressionConfig c;
  c.pruner = "snapkv";
  c.conv_kernel_size = 6;
  EXPECT_THAT(PrunerRegistry::Global().Create(c).status().message(),
              HasSubstr("conv_kernel_size=6"));
}

TEST(PrunerRegistryTest, ScoreNeedsMatchSpec) {
  for (const char* name : {"h2o", "tova", "roco", "conv"}) {
    CompressionConfig c;
    c.pruner = name;
    EXPECT_TRUE((*PrunerRegistry::Global().Create(c))->needs_scores()) << name;
  }
  for (const char* name :
       {"streaming_llm", "chunk_prefix", "random", "local_window", "no_compress"}) {
    CompressionConfig c;
    c.pruner = name;
    EXPECT_FALSE((*PrunerRegistry::Global().Create(c))->needs_scores()) << name;
  }
}

}  // namespace
}  // namespace ctxmem::compress
