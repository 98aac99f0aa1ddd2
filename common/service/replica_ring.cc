#include "common/service/replica_ring.h"

#include <xxhash.h>

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace ctxmem::service {
namespace {

// Fixed seed: the placement must be the same in every process and on every machine.
constexpr uint64_t kRingSeed = 0x63746d656d726e67ULL;  // "ctmemrng"

uint64_t Hash(absl::string_view bytes) { return XXH64(bytes.data(), bytes.size(), kRingSeed); }

}  // namespace

absl::StatusOr<ReplicaRing> ReplicaRing::Create(std::vector<std::string> addresses) {
  if (addresses.empty()) {
    return absl::InvalidArgumentError("at least one compressor address is required");
  }
  absl::flat_hash_set<std::string> seen;
  for (const std::string& a : addresses) {
    if (a.empty()) return absl::InvalidArgumentError("a compressor address is empty");
    if (!seen.insert(a).second) {
      return absl::InvalidArgumentError(absl::StrCat("compressor address ", a, " is given twice"));
    }
  }
  return ReplicaRing(std::move(addresses));
}

ReplicaRing::ReplicaRing(std::vector<std::string> addresses) : addresses_(std::move(addresses)) {
  ring_.reserve(addresses_.size() * kVirtualNodes);
  for (size_t i = 0; i < addresses_.size(); ++i) {
    for (int v = 0; v < kVirtualNodes; ++v) {
      ring_.emplace_back(Hash(absl::StrCat(addresses_[i], "#", v)), static_cast<int>(i));
    }
  }
  std::sort(ring_.begin(), ring_.end());
}

std::vector<int> ReplicaRing::Order(absl::string_view key) const {
  std::vector<int> order;
  order.reserve(addresses_.size());
  const uint64_t h = Hash(key);
  auto it = std::lower_bound(ring_.begin(), ring_.end(), std::make_pair(h, -1));
  for (size_t step = 0; step < ring_.size() && order.size() < addresses_.size(); ++step, ++it) {
    if (it == ring_.end()) it = ring_.begin();
    if (std::find(order.begin(), order.end(), it->second) == order.end()) {
      order.push_back(it->second);
    }
  }
  return order;
}

}  // namespace ctxmem::service
