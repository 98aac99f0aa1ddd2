#include "common/compress/peak_rss.h"

#include <cstring>
#include <memory>

#include "gtest/gtest.h"

namespace ctxmem::compress {
namespace {

TEST(PeakRssTest, PeakFollowsAnAllocationAndResets) {
  auto current = CurrentRssBytes();
  ASSERT_TRUE(current.ok()) << current.status();
  EXPECT_GT(*current, 0);
  // Earlier tests of this binary may have left a high peak: start from the current RSS.
  if (!ResetPeakRss().ok()) GTEST_SKIP() << "kernel refuses /proc/self/clear_refs";
  auto before = PeakRssBytes();
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_LT(*before, *current + (32 << 20));
  constexpr int64_t kBytes = 64 << 20;
  {
    auto block = std::make_unique<char[]>(kBytes);
    std::memset(block.get(), 1, kBytes);  // touch every page so it becomes resident
    auto during = PeakRssBytes();
    ASSERT_TRUE(during.ok());
    EXPECT_GE(*during, *before + kBytes / 2);
  }
  ASSERT_TRUE(ResetPeakRss().ok());
  auto after = PeakRssBytes();
  ASSERT_TRUE(after.ok());
  EXPECT_LT(*after, *before + kBytes / 2);  // the freed block no longer counts
}

}  // namespace
}  // namespace ctxmem::compress
