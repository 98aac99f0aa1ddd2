#include "common/compress/chunk_prefix_pruner.h"

#include "gtest/gtest.h"
#include "tests/unit/compress/test_util.h"

namespace ctxmem::compress {
namespace {

using testing::Rows;
using Idx = std::vector<std::vector<int64_t>>;

TEST(ChunkPrefixPrunerTest, KeepsTheOldestEntries) {
  ChunkPrefixPruner pruner;
  EXPECT_FALSE(pruner.needs_scores());
  PruneInput in;
  in.n_kv_heads = 2;
  in.n_memory = 2;
  in.n_chunk = 3;
  in.target = 3;
  in.src = testing::SrcRange(2, 4, 5);
  in.memory_rank = testing::Mat({{-4, -5}, {-4, -5}});
  auto sel = pruner.Select(in);
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(Rows(sel->indices), (Idx{{0, 1, 2}, {0, 1, 2}}));
}

}  // namespace
}  // namespace ctxmem::compress
