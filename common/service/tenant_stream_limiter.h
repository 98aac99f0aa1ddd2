#pragma once
// TenantStreamLimiter: caps how many streams (long-lived RPCs) one tenant may have open at
// once, so one client cannot take every worker and queue slot. A caller acquires a
// StreamLease for the life of its stream; the lease gives the slot back when destroyed.
// Thread-safety: thread-safe; a StreamLease is move-only and must not outlive its limiter.

#include <absl/base/thread_annotations.h>
#include <absl/container/flat_hash_map.h>
#include <absl/status/statusor.h>
#include <absl/synchronization/mutex.h>

#include <cstdint>
#include <string>

namespace ctxmem::service {

class TenantStreamLimiter;

// One open stream of a tenant. Empty (default or moved-from) leases hold nothing.
class StreamLease {
 public:
  StreamLease() = default;
  StreamLease(StreamLease&& other) noexcept;
  StreamLease& operator=(StreamLease&& other) noexcept;
  StreamLease(const StreamLease&) = delete;
  StreamLease& operator=(const StreamLease&) = delete;
  ~StreamLease() { Release(); }

  // Gives the slot back now (idempotent).
  void Release();
  bool held() const { return limiter_ != nullptr; }

 private:
  friend class TenantStreamLimiter;
  StreamLease(TenantStreamLimiter* limiter, std::string tenant)
      : limiter_(limiter), tenant_(std::move(tenant)) {}

  TenantStreamLimiter* limiter_ = nullptr;  // borrowed; nullptr = empty
  std::string tenant_;
};

class TenantStreamLimiter {
 public:
  // `max_streams_per_tenant` >= 1 (values below are treated as 1).
  explicit TenantStreamLimiter(int64_t max_streams_per_tenant);
  TenantStreamLimiter(const TenantStreamLimiter&) = delete;
  TenantStreamLimiter& operator=(const TenantStreamLimiter&) = delete;

  // A lease for one more stream of `tenant`, or ResourceExhausted
  // "tenant X already has N streams (limit N)" when it is at the limit.
  absl::StatusOr<StreamLease> Acquire(const std::string& tenant);

  int64_t open_streams(const std::string& tenant) const;
  int64_t limit() const { return limit_; }

 private:
  friend class StreamLease;
  void Release(const std::string& tenant);

  const int64_t limit_;  // constant after construction
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, int64_t> open_ ABSL_GUARDED_BY(mu_);  // tenant -> streams > 0
};

}  // namespace ctxmem::service
