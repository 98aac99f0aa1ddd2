#include "common/service/tenant_stream_limiter.h"

#include <absl/strings/str_cat.h>

#include <algorithm>
#include <utility>

namespace ctxmem::service {

// Invariant: open_[t] is the number of live, held leases of tenant t, and tenants without a
// lease have no entry (the map does not grow with every tenant ever seen).

StreamLease::StreamLease(StreamLease&& other) noexcept
    : limiter_(std::exchange(other.limiter_, nullptr)), tenant_(std::move(other.tenant_)) {}

StreamLease& StreamLease::operator=(StreamLease&& other) noexcept {
  if (this != &other) {
    Release();
    limiter_ = std::exchange(other.limiter_, nullptr);
    tenant_ = std::move(other.tenant_);
  }
  return *this;
}

void StreamLease::Release() {
  if (limiter_ == nullptr) return;
  std::exchange(limiter_, nullptr)->Release(tenant_);
}

TenantStreamLimiter::TenantStreamLimiter(int64_t max_streams_per_tenant)
    : limit_(std::max<int64_t>(1, max_streams_per_tenant)) {}

absl::StatusOr<StreamLease> TenantStreamLimiter::Acquire(const std::string& tenant) {
  absl::MutexLock lock(&mu_);
  int64_t& n = open_[tenant];
  if (n >= limit_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("tenant ", tenant, " already has ", n, " streams (limit ", limit_, ")"));
  }
  ++n;
  return StreamLease(this, tenant);
}

int64_t TenantStreamLimiter::open_streams(const std::string& tenant) const {
  absl::MutexLock lock(&mu_);
  auto it = open_.find(tenant);
  return it == open_.end() ? 0 : it->second;
}

void TenantStreamLimiter::Release(const std::string& tenant) {
  absl::MutexLock lock(&mu_);
  auto it = open_.find(tenant);
  if (it == open_.end()) return;
  if (--it->second <= 0) open_.erase(it);
}

}  // namespace ctxmem::service
