// SpinPool: every item exactly once, slots never shared by chunks running at the same time,
// nested and concurrent calls, and the sleeping (spin_us = 0) path.

#include "common/model/spin_pool.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace ctxmem::model {
namespace {

// Runs pool.ParallelFor and checks coverage and slot exclusivity.
void CheckCoverage(SpinPool& pool, int64_t n, int64_t grain, int threads) {
  std::vector<std::atomic<int>> hits(n);
  std::vector<std::atomic<int>> in_use(threads);
  std::atomic<bool> clash{false};
  const bool inline_run = threads <= 1 || (n + grain - 1) / grain <= 1;
  pool.ParallelFor(n, grain, threads, [&](int64_t begin, int64_t end, int slot) {
    ASSERT_GE(slot, 0);
    ASSERT_LT(slot, threads);
    if (in_use[slot].fetch_add(1) != 0) clash = true;
    EXPECT_LE(end - begin, inline_run ? n : grain);
    for (int64_t i = begin; i < end; ++i) hits[i].fetch_add(1);
    in_use[slot].fetch_sub(1);
  });
  EXPECT_FALSE(clash) << "two chunks ran on one slot at once";
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "item " << i << " n " << n;
}

TEST(SpinPoolTest, EveryItemOnceForManyShapes) {
  for (int spin_us : {0, 200}) {
    SpinPool pool(spin_us);
    for (int threads : {1, 2, 3, 4}) {
      for (int64_t n : {1, 2, 7, 64, 1000}) {
        for (int64_t grain : {1, 3, 16, 2000}) {
          SCOPED_TRACE(::testing::Message() << "spin " << spin_us << " threads " << threads << " n "
                                            << n << " grain " << grain);
          CheckCoverage(pool, n, grain, threads);
        }
      }
    }
  }
}

TEST(SpinPoolTest, ManyRegionsBackToBack) {
  SpinPool pool(200);
  std::atomic<int64_t> sum{0};
  for (int r = 0; r < 2000; ++r) {
    pool.ParallelFor(64, 4, 2, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) sum.fetch_add(i);
    });
  }
  EXPECT_EQ(sum.load(), int64_t{2000} * (63 * 64 / 2));
}

TEST(SpinPoolTest, NestedCallRunsInline) {
  SpinPool pool(200);
  std::atomic<int> inner_items{0};
  pool.ParallelFor(8, 1, 2, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      pool.ParallelFor(10, 1, 2, [&](int64_t ib, int64_t ie, int slot) {
        EXPECT_EQ(slot, 0);  // inline: the whole range on the calling thread
        EXPECT_EQ(ib, 0);
        EXPECT_EQ(ie, 10);
        inner_items.fetch_add(static_cast<int>(ie - ib));
      });
    }
  });
  EXPECT_EQ(inner_items.load(), 80);
}

TEST(SpinPoolTest, ConcurrentCallersBothFinish) {
  SpinPool pool(100);
  std::atomic<int64_t> total{0};
  auto caller = [&] {
    for (int r = 0; r < 300; ++r) {
      pool.ParallelFor(100, 7, 2, [&](int64_t b, int64_t e, int) { total.fetch_add(e - b); });
    }
  };
  std::thread a(caller), b(caller);
  a.join();
  b.join();
  EXPECT_EQ(total.load(), 2 * 300 * 100);
}

TEST(SpinPoolTest, SleepingWorkersWakeForLaterRegions) {
  SpinPool pool(0);
  EXPECT_FALSE(pool.spins());
  for (int r = 0; r < 5; ++r) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // the worker is asleep now
    CheckCoverage(pool, 100, 10, 2);
  }
}

}  // namespace
}  // namespace ctxmem::model
