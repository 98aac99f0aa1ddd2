#include "common/service/work_queue.h"

#include <absl/synchronization/notification.h>
#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace ctxmem::service {
namespace {

TEST(WorkQueueTest, ValidatesOptions) {
  EXPECT_EQ(WorkQueueOptions{.n_workers = 0}.Validate().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WorkQueueOptions{.max_pending = -1}.Validate().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(WorkQueueOptions{}.Validate().ok());
}

TEST(WorkQueueTest, RunsEveryJobBeforeShutdownReturns) {
  WorkQueue queue({.name = "test", .n_workers = 2, .max_pending = 100});
  std::atomic<int> done{0};
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(queue.TrySubmit([&done] { done.fetch_add(1); }).ok());
  }
  queue.Shutdown();
  EXPECT_EQ(done.load(), 50);
  EXPECT_EQ(queue.TrySubmit([] {}).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(WorkQueueTest, FullQueueRefusesAtOnce) {
  WorkQueue queue({.name = "compress", .n_workers = 1, .max_pending = 1});
  absl::Notification started, release;
  ASSERT_TRUE(queue
                  .TrySubmit([&] {
                    started.Notify();
                    release.WaitForNotification();
                  })
                  .ok());
  started.WaitForNotification();  // the one worker is busy
  EXPECT_EQ(queue.running(), 1);
  ASSERT_TRUE(queue.TrySubmit([] {}).ok());  // takes the one waiting slot
  EXPECT_EQ(queue.pending(), 1);
  absl::Status full = queue.TrySubmit([] {});
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(std::string(full.message()).find("compress queue is full"), std::string::npos);
  release.Notify();
  queue.Shutdown();
  EXPECT_EQ(queue.pending(), 0);
  EXPECT_EQ(queue.running(), 0);
}

TEST(WorkQueueTest, ZeroPendingStillAdmitsIdleWorkers) {
  WorkQueue queue({.n_workers = 2, .max_pending = 0});
  absl::Notification release;
  std::atomic<int> started{0};
  auto job = [&] {
    started.fetch_add(1);
    release.WaitForNotification();
  };
  EXPECT_TRUE(queue.TrySubmit(job).ok());
  EXPECT_TRUE(queue.TrySubmit(job).ok());
  EXPECT_EQ(queue.TrySubmit(job).code(), absl::StatusCode::kResourceExhausted);
  release.Notify();
  queue.Shutdown();
  EXPECT_EQ(started.load(), 2);
}

}  // namespace
}  // namespace ctxmem::service
