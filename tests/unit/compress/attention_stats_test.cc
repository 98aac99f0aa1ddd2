#include "common/compress/attention_stats.h"

#include <ATen/ops/allclose.h>

#include "gtest/gtest.h"
#include "tests/unit/compress/test_util.h"

namespace ctxmem::compress {
namespace {

using testing::Mat;

TEST(AttentionStatsTest, CausalCountsForAllChunkQueries) {
  // 2 memory columns, 3 chunk candidates, all 3 chunk queries score (§12.1 exact mode).
  auto counts = CausalQueryCounts(2, 3, 3, c10::Device(c10::kCPU));
  EXPECT_TRUE(at::allclose(counts, at::tensor({3.f, 3.f, 3.f, 2.f, 1.f})));
}

TEST(AttentionStatsTest, CausalCountsForAWindow) {
  // Only the last 2 queries score (window mode): every key is seen by at most 2.
  auto counts = CausalQueryCounts(2, 4, 2, c10::Device(c10::kCPU));
  EXPECT_TRUE(at::allclose(counts, at::tensor({2.f, 2.f, 2.f, 2.f, 2.f, 1.f})));
}

TEST(AttentionStatsTest, MeanDividesColumnSumsByCounts) {
  auto scores = Mat({{0.5f, 0.3f, 0.2f, 0.0f, 0.0f},
                     {0.1f, 0.1f, 0.4f, 0.4f, 0.0f},
                     {0.2f, 0.1f, 0.1f, 0.3f, 0.3f}})
                    .unsqueeze(0);  // [1 kv head, 3 rows, 5 cols]
  EXPECT_TRUE(at::allclose(ColumnSums(scores), Mat({{0.8f, 0.5f, 0.7f, 0.7f, 0.3f}})));
  EXPECT_TRUE(at::allclose(CausalMeanScores(scores, 2, 3),
                           Mat({{0.8f / 3, 0.5f / 3, 0.7f / 3, 0.35f, 0.3f}})));
}

// §12.2: query head h belongs to kv head h / n_rep (not the seed's h mod n_kv).
TEST(AttentionStatsTest, FoldsQueryHeadsIntoTheirOwnKvGroup) {
  // 4 query heads, 2 kv heads: heads {0,1} -> kv 0, heads {2,3} -> kv 1.
  auto attn = at::tensor({1.f, 10.f, 100.f, 1000.f}).reshape({4, 1, 1});
  auto folded = FoldQueryHeads(attn, 2);  // [2, 1, 1]
  EXPECT_FLOAT_EQ(folded[0][0][0].item<float>(), 11.f);
  EXPECT_FLOAT_EQ(folded[1][0][0].item<float>(), 1100.f);
}

}  // namespace
}  // namespace ctxmem::compress
