#include "common/service/request_id.h"

#include <absl/strings/str_format.h>

#include <atomic>
#include <cstdint>
#include <random>

namespace ctxmem::service {
namespace {

// SplitMix64's finalizer: a bijection on 64-bit values, so distinct inputs never collide.
uint64_t Mix(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t ProcessKey() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace

std::string NewRequestId() {
  static const uint64_t key = ProcessKey();
  static std::atomic<uint64_t> counter{0};
  // key + counter is distinct per call; Mix keeps it distinct and hides the counter.
  return absl::StrFormat("%016x", Mix(key + counter.fetch_add(1, std::memory_order_relaxed)));
}

}  // namespace ctxmem::service
