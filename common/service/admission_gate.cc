#include "common/service/admission_gate.h"

#include <absl/strings/str_cat.h>

#include <algorithm>
#include <utility>

namespace ctxmem::service {

// Invariant: counts_.waiting + counts_.running == live held tickets <= limit(); a ticket
// counts as running once MarkRunning() was called on it.

AdmissionTicket::AdmissionTicket(AdmissionTicket&& other) noexcept
    : gate_(std::exchange(other.gate_, nullptr)), running_(other.running_) {}

AdmissionTicket& AdmissionTicket::operator=(AdmissionTicket&& other) noexcept {
  if (this != &other) {
    Release();
    gate_ = std::exchange(other.gate_, nullptr);
    running_ = other.running_;
  }
  return *this;
}

void AdmissionTicket::MarkRunning() {
  if (gate_ == nullptr || running_) return;
  running_ = true;
  gate_->Update(-1, +1);
}

void AdmissionTicket::Release() {
  if (gate_ == nullptr) return;
  AdmissionGate* gate = std::exchange(gate_, nullptr);
  if (running_) {
    gate->Update(0, -1);
  } else {
    gate->Update(-1, 0);
  }
}

AdmissionGate::AdmissionGate(std::string name, int64_t n_workers, int64_t queue_depth,
                             std::function<void(AdmissionCounts)> on_change)
    : name_(std::move(name)),
      n_workers_(std::max<int64_t>(1, n_workers)),
      queue_depth_(std::max<int64_t>(0, queue_depth)),
      on_change_(std::move(on_change)) {}

absl::StatusOr<AdmissionTicket> AdmissionGate::TryAdmit() {
  AdmissionCounts now;
  {
    absl::MutexLock lock(&mu_);
    if (counts_.waiting + counts_.running >= limit()) {
      return absl::ResourceExhaustedError(absl::StrCat(
          name_, " queue is full (", counts_.running, " running, ", counts_.waiting,
          " waiting; limit ", n_workers_, " workers + ", queue_depth_, " queued); retry later"));
    }
    ++counts_.waiting;
    now = counts_;
  }
  if (on_change_) on_change_(now);
  return AdmissionTicket(this);
}

AdmissionCounts AdmissionGate::counts() const {
  absl::MutexLock lock(&mu_);
  return counts_;
}

void AdmissionGate::Update(int64_t d_waiting, int64_t d_running) {
  AdmissionCounts now;
  {
    absl::MutexLock lock(&mu_);
    counts_.waiting += d_waiting;
    counts_.running += d_running;
    now = counts_;
  }
  if (on_change_) on_change_(now);
}

}  // namespace ctxmem::service
