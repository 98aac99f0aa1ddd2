#include "common/compress/no_compress_pruner.h"

#include "gtest/gtest.h"
#include "tests/unit/compress/test_util.h"

namespace ctxmem::compress {
namespace {

// §3.8: the reference keeps every entry; MemoryState then ignores budget and memory type (see
// MemoryStateTest.NoCompressKeepsEverything and CompressorTest.NoCompressEqualsFullForward).
TEST(NoCompressPrunerTest, CarriesEverything) {
  NoCompressPruner pruner;
  EXPECT_EQ(pruner.carry(), MemoryCarry::kEverything);
  EXPECT_FALSE(pruner.needs_scores());
  PruneInput in;
  in.n_kv_heads = 1;
  in.n_chunk = 4;
  in.target = 4;
  in.src = testing::SrcRange(1, 0, 4);
  auto sel = pruner.Select(in);
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(testing::Rows(sel->indices), (std::vector<std::vector<int64_t>>{{0, 1, 2, 3}}));
}

}  // namespace
}  // namespace ctxmem::compress
