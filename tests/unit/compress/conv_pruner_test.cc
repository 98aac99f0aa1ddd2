#include "common/compress/conv_pruner.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/compress/test_util.h"

namespace ctxmem::compress {
namespace {

using testing::HandExample;
using testing::Rows;
using Idx = std::vector<std::vector<int64_t>>;

// Kernel 3: pooled sums {1.3, 2.0, 1.9, 1.7, 1.0} / 3, then / counts {3, 3, 3, 2, 1}:
// {0.144, 0.222, 0.211, 0.283, 0.333}.
TEST(ConvPrunerTest, PoolsThenNormalisesKernel3) {
  auto pruner = ConvPruner::Create(3);
  ASSERT_TRUE(pruner.ok()) << pruner.status();
  auto sel = (*pruner)->Select(HandExample(3));
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(Rows(sel->indices), (Idx{{1, 3, 4}}));
  EXPECT_NEAR(sel->rank[0][0].item<float>(), 2.0f / 9, 1e-6);
}

// Kernel 5 (the default), zero padding counted: {2.0, 2.7, 3.0, 2.2, 1.7} / 5 / counts =
// {0.133, 0.18, 0.2, 0.22, 0.34}.
TEST(ConvPrunerTest, DefaultKernel5CountsPaddingInTheDivisor) {
  auto pruner = ConvPruner::Create(5);
  ASSERT_TRUE(pruner.ok()) << pruner.status();
  auto sel = (*pruner)->Select(HandExample(3));
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(Rows(sel->indices), (Idx{{2, 3, 4}}));
  EXPECT_NEAR(sel->rank[0][2].item<float>(), 0.34f, 1e-6);
}

TEST(ConvPrunerTest, RejectsEvenKernel) {
  auto pruner = ConvPruner::Create(4);
  ASSERT_FALSE(pruner.ok());
  EXPECT_THAT(pruner.status().message(), ::testing::HasSubstr("conv_kernel_size=4"));
}

}  // namespace
}  // namespace ctxmem::compress
