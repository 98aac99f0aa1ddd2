#include "common/compress/h2o_pruner.h"

#include <ATen/ops/allclose.h>

#include "gtest/gtest.h"
#include "tests/unit/compress/test_util.h"

namespace ctxmem::compress {
namespace {

using testing::HandExample;
using testing::Mat;
using testing::Rows;
using Idx = std::vector<std::vector<int64_t>>;

// Column sums {0.8, 0.5, 0.7, 0.7, 0.3} (no causal normalisation, §3.1) plus the carried
// memory ranks {0.1, 0.6}: {0.9, 1.1, 0.7, 0.7, 0.3}.
TEST(H2oPrunerTest, AddsNewAttentionToTheCarriedScore) {
  H2oPruner pruner;
  auto sel = pruner.Select(HandExample(2));
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(Rows(sel->indices), (Idx{{0, 1}}));
  EXPECT_TRUE(at::allclose(sel->rank, Mat({{0.9f, 1.1f}})));
}

// Candidates 2 and 3 tie at 0.7: the more recent one (3) wins (§12.5).
TEST(H2oPrunerTest, TieGoesToTheMoreRecentEntry) {
  H2oPruner pruner;
  auto sel = pruner.Select(HandExample(3));
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(Rows(sel->indices), (Idx{{0, 1, 3}}));
}

TEST(H2oPrunerTest, ScoresAccumulateOverSteps) {
  H2oPruner pruner;
  // Step 1: one memory entry that received 0.5 so far, one chunk token receiving 0.6 now.
  PruneInput in;
  in.n_kv_heads = 1;
  in.n_memory = 1;
  in.n_chunk = 1;
  in.target = 1;
  in.scores = Mat({{0.4f, 0.6f}}).unsqueeze(0);  // [1, 1 row, 2]
  in.memory_rank = Mat({{0.5f}});
  in.src = testing::SrcRange(1, 0, 2);
  auto sel = pruner.Select(in);
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(Rows(sel->indices), (Idx{{0}}));  // 0.5 + 0.4 > 0.6
  EXPECT_FLOAT_EQ(sel->rank[0][0].item<float>(), 0.9f);
}

}  // namespace
}  // namespace ctxmem::compress
