#include "common/service/request_id.h"

#include <absl/synchronization/mutex.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

namespace ctxmem::service {
namespace {

TEST(RequestIdTest, ShortHexAndUniqueAcrossThreads) {
  absl::Mutex mu;
  std::set<std::string> seen;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      std::vector<std::string> mine;
      for (int i = 0; i < 5000; ++i) mine.push_back(NewRequestId());
      absl::MutexLock lock(&mu);
      seen.insert(mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(seen.size(), 20000u);
  for (const std::string& id : seen) {
    ASSERT_EQ(id.size(), 16u);
    ASSERT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
  }
}

TEST(RequestIdTest, ConsecutiveIdsDoNotLookSequential) {
  const std::string a = NewRequestId();
  const std::string b = NewRequestId();
  EXPECT_NE(a.substr(0, 8), b.substr(0, 8));
}

}  // namespace
}  // namespace ctxmem::service
