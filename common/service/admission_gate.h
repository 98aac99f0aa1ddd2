#pragma once
// AdmissionGate: how many jobs a server has admitted (uploading, queued or running), with a
// hard limit, so that a full server refuses a new job at its first message instead of after
// the client has uploaded its whole context. A job holds an AdmissionTicket from admission to
// its end; the ticket also marks when the job starts running, for the queue-depth gauge.
// Thread-safety: thread-safe; tickets are move-only and must not outlive their gate.

#include <absl/base/thread_annotations.h>
#include <absl/status/statusor.h>
#include <absl/synchronization/mutex.h>

#include <cstdint>
#include <functional>
#include <string>

namespace ctxmem::service {

class AdmissionGate;

class AdmissionTicket {
 public:
  AdmissionTicket() = default;
  AdmissionTicket(AdmissionTicket&& other) noexcept;
  AdmissionTicket& operator=(AdmissionTicket&& other) noexcept;
  AdmissionTicket(const AdmissionTicket&) = delete;
  AdmissionTicket& operator=(const AdmissionTicket&) = delete;
  ~AdmissionTicket() { Release(); }

  void MarkRunning();  // the job got a worker (idempotent)
  void Release();      // the job is over (idempotent)
  bool held() const { return gate_ != nullptr; }

 private:
  friend class AdmissionGate;
  explicit AdmissionTicket(AdmissionGate* gate) : gate_(gate) {}

  AdmissionGate* gate_ = nullptr;  // borrowed; nullptr = empty
  bool running_ = false;
};

struct AdmissionCounts {
  int64_t waiting = 0;  // admitted, not running yet
  int64_t running = 0;
};

class AdmissionGate {
 public:
  // Admits at most n_workers + queue_depth jobs at once. `on_change` (may be empty) is called
  // with the new counts after every change, outside the lock (e.g. to set gauges).
  AdmissionGate(std::string name, int64_t n_workers, int64_t queue_depth,
                std::function<void(AdmissionCounts)> on_change = nullptr);
  AdmissionGate(const AdmissionGate&) = delete;
  AdmissionGate& operator=(const AdmissionGate&) = delete;

  // A ticket, or ResourceExhausted "<name> queue is full (R running, W waiting; limit ...)".
  absl::StatusOr<AdmissionTicket> TryAdmit();
  AdmissionCounts counts() const;
  int64_t limit() const { return n_workers_ + queue_depth_; }

 private:
  friend class AdmissionTicket;
  void Update(int64_t d_waiting, int64_t d_running);

  // Constant after construction.
  const std::string name_;
  const int64_t n_workers_;
  const int64_t queue_depth_;
  const std::function<void(AdmissionCounts)> on_change_;

  mutable absl::Mutex mu_;
  AdmissionCounts counts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ctxmem::service
