#include "common/compress/random_pruner.h"

#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/compress/test_util.h"

namespace ctxmem::compress {
namespace {

using testing::Rows;

PruneInput Candidates(int64_t n_kv_heads, int64_t n, int64_t target, int64_t step, int64_t layer) {
  PruneInput in;
  in.n_kv_heads = n_kv_heads;
  in.n_chunk = n;
  in.target = target;
  in.step = step;
  in.layer = layer;
  in.src = testing::SrcRange(n_kv_heads, 0, n);
  return in;
}

TEST(RandomPrunerTest, SameSeedSameSelectionSortedAndSharedByHeads) {
  RandomPruner a(7), b(7);
  auto sa = a.Select(Candidates(3, 40, 10, 2, 1));
  auto sb = b.Select(Candidates(3, 40, 10, 2, 1));
  ASSERT_TRUE(sa.ok() && sb.ok());
  auto rows = Rows(sa->indices);
  EXPECT_EQ(rows, Rows(sb->indices));
  EXPECT_EQ(rows[0], rows[1]);
  EXPECT_EQ(rows[0], rows[2]);
  for (size_t i = 1; i < rows[0].size(); ++i) EXPECT_LT(rows[0][i - 1], rows[0][i]);
}

TEST(RandomPrunerTest, SeedStepAndLayerChangeTheDraw) {
  RandomPruner a(7), b(8);
  auto base = Rows(a.Select(Candidates(1, 40, 10, 0, 0))->indices);
  EXPECT_NE(base, Rows(b.Select(Candidates(1, 40, 10, 0, 0))->indices));
  EXPECT_NE(base, Rows(a.Select(Candidates(1, 40, 10, 1, 0))->indices));
  EXPECT_NE(base, Rows(a.Select(Candidates(1, 40, 10, 0, 1))->indices));
}

// Every candidate is equally likely: 3000 draws of 3 out of 10 keep each ~900 times.
TEST(RandomPrunerTest, SubsetIsUniform) {
  RandomPruner pruner(1);
  std::vector<int> kept(10, 0);
  for (int step = 0; step < 3000; ++step) {
    auto sel = pruner.Select(Candidates(1, 10, 3, step, 0));
    ASSERT_TRUE(sel.ok());
    const auto rows = Rows(sel->indices);
    for (int64_t i : rows[0]) ++kept[i];
  }
  for (int i = 0; i < 10; ++i) {
    EXPECT_GT(kept[i], 810) << i;  // mean 900, sd ~25
    EXPECT_LT(kept[i], 990) << i;
  }
}

}  // namespace
}  // namespace ctxmem::compress
