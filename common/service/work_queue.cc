#include "common/service/work_queue.h"

#include <absl/strings/str_cat.h>

namespace ctxmem::service {

absl::Status WorkQueueOptions::Validate() const {
  if (n_workers < 1) {
    return absl::InvalidArgumentError(absl::StrCat(name, " workers must be >= 1, got ", n_workers));
  }
  if (max_pending < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " queue depth must be >= 0, got ", max_pending));
  }
  return absl::OkStatus();
}

WorkQueue::WorkQueue(WorkQueueOptions options) : options_(std::move(options)) {
  workers_.reserve(options_.n_workers);
  for (int i = 0; i < options_.n_workers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

WorkQueue::~WorkQueue() { Shutdown(); }

absl::Status WorkQueue::TrySubmit(std::function<void()> job) {
  absl::MutexLock lock(&mu_);
  if (stopping_) {
    return absl::FailedPreconditionError(absl::StrCat(options_.name, " queue is shutting down"));
  }
  // A job is admitted when a worker is idle or a waiting slot is free.
  const int64_t idle = options_.n_workers - running_ - static_cast<int64_t>(jobs_.size());
  if (idle <= 0 && static_cast<int64_t>(jobs_.size()) >= options_.max_pending) {
    return absl::ResourceExhaustedError(
        absl::StrCat(options_.name, " queue is full (", running_, " running, ", jobs_.size(),
                     " waiting, limit ", options_.max_pending, " waiting); retry later"));
  }
  jobs_.push_back(std::move(job));
  return absl::OkStatus();
}

void WorkQueue::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
  }
  for (std::thread& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
  workers_.clear();
}

int64_t WorkQueue::pending() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(jobs_.size());
}

int64_t WorkQueue::running() const {
  absl::MutexLock lock(&mu_);
  return running_;
}

void WorkQueue::WorkerLoop() {
  while (true) {
    std::function<void()> job;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](WorkQueue* q)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(q->mu_) { return q->stopping_ || !q->jobs_.empty(); },
          this));
      if (jobs_.empty()) return;  // stopping and drained
      job = std::move(jobs_.front());
      jobs_.pop_front();
      ++running_;
    }
    job();
    absl::MutexLock lock(&mu_);
    --running_;
  }
}

}  // namespace ctxmem::service
