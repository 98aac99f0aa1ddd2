#include "common/service/tenant_stream_limiter.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ctxmem::service {
namespace {

TEST(TenantStreamLimiterTest, RefusesTheStreamPastTheLimitAndSaysWhy) {
  TenantStreamLimiter limiter(2);
  auto a = limiter.Acquire("acme");
  auto b = limiter.Acquire("acme");
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = limiter.Acquire("acme");
  ASSERT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(c.status().message(), "tenant acme already has 2 streams (limit 2)");
  // Other tenants are counted apart.
  EXPECT_TRUE(limiter.Acquire("other").ok());
  EXPECT_EQ(limiter.open_streams("acme"), 2);
}

TEST(TenantStreamLimiterTest, LeasesGiveTheirSlotBackOnceWhenDestroyedOrMoved) {
  TenantStreamLimiter limiter(1);
  {
    StreamLease lease = std::move(limiter.Acquire("t")).value();
    EXPECT_TRUE(lease.held());
    StreamLease moved = std::move(lease);
    EXPECT_FALSE(lease.held());
    EXPECT_EQ(limiter.open_streams("t"), 1);
    EXPECT_FALSE(limiter.Acquire("t").ok());
    moved.Release();
    moved.Release();  // idempotent
    EXPECT_EQ(limiter.open_streams("t"), 0);
    StreamLease again = std::move(limiter.Acquire("t")).value();
    StreamLease other;
    other = std::move(again);  // move-assign keeps exactly one hold
    EXPECT_EQ(limiter.open_streams("t"), 1);
  }
  EXPECT_EQ(limiter.open_streams("t"), 0);
  EXPECT_TRUE(limiter.Acquire("t").ok());
}

TEST(TenantStreamLimiterTest, ConcurrentAcquiresNeverExceedTheLimit) {
  TenantStreamLimiter limiter(3);
  std::atomic<int> max_seen{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        auto lease = limiter.Acquire("t");
        if (!lease.ok()) continue;
        int n = static_cast<int>(limiter.open_streams("t"));
        int prev = max_seen.load();
        while (n > prev && !max_seen.compare_exchange_weak(prev, n)) {
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(max_seen.load(), 3);
  EXPECT_GE(max_seen.load(), 1);
  EXPECT_EQ(limiter.open_streams("t"), 0);
}

}  // namespace
}  // namespace ctxmem::service
