#pragma once
// ReplicaRing: which compressor replica holds a memory. Consistent hashing of memory_id over
// the configured addresses (each address placed at kVirtualNodes points of a 64-bit ring), so
// adding or removing a replica moves only about 1/n of the ids. Order(id) is the fail-over
// order: the owner first, then the next distinct replicas clockwise.
// Thread-safety: const methods only after construction.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ctxmem::service {

class ReplicaRing {
 public:
  static constexpr int kVirtualNodes = 64;  // ring points per address

  // InvalidArgument for an empty list, an empty address or a duplicate.
  static absl::StatusOr<ReplicaRing> Create(std::vector<std::string> addresses);

  // Indexes into addresses(), every replica exactly once, owner of `key` first.
  std::vector<int> Order(absl::string_view key) const;
  const std::vector<std::string>& addresses() const { return addresses_; }

 private:
  explicit ReplicaRing(std::vector<std::string> addresses);

  std::vector<std::string> addresses_;
  std::vector<std::pair<uint64_t, int>> ring_;  // (point, address index), sorted by point
};

}  // namespace ctxmem::service
