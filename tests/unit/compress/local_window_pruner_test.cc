#include "common/compress/local_window_pruner.h"

#include "gtest/gtest.h"

namespace ctxmem::compress {
namespace {

// §12.11: nothing, not even sinks, is carried between chunks; the rule is applied by
// MemoryState (see MemoryStateTest.LocalWindowCarriesNothing).
TEST(LocalWindowPrunerTest, CarriesNothingAndNeedsNoScores) {
  LocalWindowPruner pruner;
  EXPECT_EQ(pruner.carry(), MemoryCarry::kNothing);
  EXPECT_FALSE(pruner.needs_scores());
  EXPECT_EQ(pruner.name(), "local_window");
}

}  // namespace
}  // namespace ctxmem::compress
