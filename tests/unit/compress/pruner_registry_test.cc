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
              ElementsAre("chunk_prefix", "conv", "h2o", "local_window", "no_compress", "random",
                          "roco", "snapkv", "streaming_llm", "tova"));
  for (const std::string& name : PrunerRegistry::Global().names()) {
    CompressionConfig c;
    c.pruner = name;
    auto p = PrunerRegistry::Global().Create(c);
    ASSERT_TRUE(p.ok()) << name << ": " << p.status();
    EXPECT_EQ((*p)->name(), name == "snapkv" ? "conv" : name);
  }
}

TEST(PrunerRegistryTest, UnknownNameListsTheKnownOnes) {
  CompressionConfig c;
  c.pruner = "perceiver";
  auto p = PrunerRegistry::Global().Create(c);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("unknown pruner 'perceiver'"));
  EXPECT_THAT(p.status().message(), HasSubstr("snapkv, streaming_llm, tova"));
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
