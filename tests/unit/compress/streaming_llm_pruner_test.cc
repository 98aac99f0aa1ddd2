#include "common/compress/streaming_llm_pruner.h"

#include "gtest/gtest.h"
#include "tests/unit/compress/test_util.h"

namespace ctxmem::compress {
namespace {

using testing::Rows;
using Idx = std::vector<std::vector<int64_t>>;

TEST(StreamingLlmPrunerTest, KeepsTheNewestEntriesOnEveryHead) {
  StreamingLlmPruner pruner;
  EXPECT_FALSE(pruner.needs_scores());
  PruneInput in;
  in.n_kv_heads = 2;
  in.n_memory = 3;
  in.n_chunk = 4;
  in.target = 3;
  // Heads kept different memory entries earlier; candidates are in stream order per head.
  in.src = testing::Mat({{4, 9, 12, 20, 21, 22, 23}, {6, 7, 15, 20, 21, 22, 23}}).to(at::kLong);
  in.memory_rank = testing::Mat({{0, 0, 0}, {0, 0, 0}});
  auto sel = pruner.Select(in);
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(Rows(sel->indices), (Idx{{4, 5, 6}, {4, 5, 6}}));
}

TEST(StreamingLlmPrunerTest, KeepsEverythingUnderBudget) {
  StreamingLlmPruner pruner;
  PruneInput in;
  in.n_kv_heads = 1;
  in.n_chunk = 3;
  in.target = 8;
  in.src = testing::SrcRange(1, 4, 3);
  auto sel = pruner.Select(in);
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(Rows(sel->indices), (Idx{{0, 1, 2}}));
}

}  // namespace
}  // namespace ctxmem::compress
