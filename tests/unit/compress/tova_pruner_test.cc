#include "common/compress/tova_pruner.h"

#include <ATen/ops/allclose.h>
#include <ATen/ops/cat.h>

#include "gtest/gtest.h"
#include "tests/unit/compress/test_util.h"

namespace ctxmem::compress {
namespace {

using testing::HandExample;
using testing::Mat;
using testing::Rows;
using Idx = std::vector<std::vector<int64_t>>;

class TovaPrunerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!testing::DeviceAvailable(GetParam())) GTEST_SKIP() << GetParam() << " not available";
  }
  PruneInput OnDevice(PruneInput in) {
    const auto d = testing::DeviceOf(GetParam());
    in.scores = in.scores.to(d);
    in.memory_rank = in.memory_rank.to(d);
    in.src = in.src.to(d);
    return in;
  }
  TovaPruner pruner_;
};

// Means {0.267, 0.167, 0.233, 0.35, 0.3}: the two newest chunk keys, then memory entry 0.
TEST_P(TovaPrunerTest, KeepsHighestCausalMeanAttention) {
  auto two = pruner_.Select(OnDevice(HandExample(2)));
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(Rows(two->indices), (Idx{{3, 4}}));
  EXPECT_TRUE(at::allclose(two->rank.cpu(), Mat({{0.35f, 0.3f}})));
  auto three = pruner_.Select(OnDevice(HandExample(3)));
  ASSERT_TRUE(three.ok()) << three.status();
  EXPECT_EQ(Rows(three->indices), (Idx{{0, 3, 4}}));
}

TEST_P(TovaPrunerTest, SelectsPerKvHead) {
  PruneInput in = HandExample(2);
  in.n_kv_heads = 2;
  // Head 1 attends mostly to the memory.
  auto head1 = Mat({{0.6f, 0.4f, 0.0f, 0.0f, 0.0f},
                    {0.5f, 0.4f, 0.05f, 0.05f, 0.0f},
                    {0.4f, 0.4f, 0.1f, 0.05f, 0.05f}})
                   .unsqueeze(0);
  in.scores = at::cat({in.scores, head1}, 0);  // [2, 3, 5]
  in.memory_rank = Mat({{0.1f, 0.6f}, {0.1f, 0.6f}});
  in.src = testing::SrcRange(2, 4, 5);
  auto sel = pruner_.Select(OnDevice(in));
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(Rows(sel->indices), (Idx{{3, 4}, {0, 1}}));
}

// DOUBLE_COMPRESS: hidden memory entries keep their stored rank, only chunk columns are scored.
TEST_P(TovaPrunerTest, HiddenMemoryUsesStoredRank) {
  PruneInput in = HandExample(2);
  in.memory_hidden = true;
  in.scores = in.scores.narrow(2, 2, 3).contiguous();  // chunk columns only: [1, 3, 3]
  in.memory_rank = Mat({{0.9f, 0.05f}});
  // Chunk means: {0.7/3, 0.35, 0.3}; hidden {0.9, 0.05}.
  auto sel = pruner_.Select(OnDevice(in));
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(Rows(sel->indices), (Idx{{0, 3}}));
}

INSTANTIATE_TEST_SUITE_P(Devices, TovaPrunerTest, ::testing::ValuesIn(testing::TestDevices()));

}  // namespace
}  // namespace ctxmem::compress
