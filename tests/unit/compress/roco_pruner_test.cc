#include "common/compress/roco_pruner.h"

#include "gtest/gtest.h"
#include "tests/unit/compress/test_util.h"

namespace ctxmem::compress {
namespace {

using testing::HandExample;
using testing::Rows;
using Idx = std::vector<std::vector<int64_t>>;

// Per-key std over the 3 queries (second moment per key, §12.3):
// {0.170, 0.094, 0.125, 0.05, 0.0}. target 2 zeroes the 1 lowest-std key (4), so the means
// {0.267, 0.167, 0.233, 0.35, 0} pick {0, 3} where TOVA picks {3, 4}.
TEST(RocoPrunerTest, ZeroesLowestStdKeysBeforeTopK) {
  RocoPruner pruner;
  auto sel = pruner.Select(HandExample(2));
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(Rows(sel->indices), (Idx{{0, 3}}));
}

// target 4 zeroes keys 4 and 3; of the two zeros the more recent (4) is kept (§12.5).
TEST(RocoPrunerTest, ZeroedKeysTieTowardsTheRecent) {
  RocoPruner pruner;
  auto sel = pruner.Select(HandExample(4));
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(Rows(sel->indices), (Idx{{0, 1, 2, 4}}));
  EXPECT_FLOAT_EQ(sel->rank[0][3].item<float>(), 0.f);
}

}  // namespace
}  // namespace ctxmem::compress
