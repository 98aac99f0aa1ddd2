#pragma once
// WorkQueue: a bounded FIFO of jobs run by a fixed pool of worker threads (STYLE.md rule 35:
// handlers validate, enqueue and reply; model work runs here). A full queue refuses at once
// with ResourceExhausted instead of letting callers wait without bound.
// Thread-safety: thread-safe.

#include <absl/base/thread_annotations.h>
#include <absl/status/status.h>
#include <absl/synchronization/mutex.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace ctxmem::service {

struct WorkQueueOptions {
  std::string name = "work";  // in error messages and thread names
  int n_workers = 1;          // >= 1
  int64_t max_pending = 16;   // jobs waiting (not yet running); >= 0

  absl::Status Validate() const;
};

class WorkQueue {
 public:
  explicit WorkQueue(WorkQueueOptions options);  // options must be valid (Validate())
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;
  ~WorkQueue();  // Shutdown()

  // Queues `job`. ResourceExhausted naming the queue and its limit when max_pending jobs are
  // already waiting; FailedPrecondition after Shutdown(). A job must not throw.
  absl::Status TrySubmit(std::function<void()> job);

  // Stops accepting jobs, lets the workers finish every queued job, joins them. Idempotent.
  void Shutdown();

  int64_t pending() const;  // waiting, not running
  int64_t running() const;
  const WorkQueueOptions& options() const { return options_; }

 private:
  void WorkerLoop();

  const WorkQueueOptions options_;
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
  int64_t running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace ctxmem::service
