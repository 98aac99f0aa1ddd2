#include "common/compress/peak_rss.h"

#include <sys/mman.h>

#include <cstring>

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
    // Fresh pages from mmap: malloc could reuse free heap memory that is already resident.
    void* block = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(block, MAP_FAILED);
    std::memset(block, 1, kBytes);  // touch every page so it becomes resident
    auto during = PeakRssBytes();
    munmap(block, kBytes);
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
