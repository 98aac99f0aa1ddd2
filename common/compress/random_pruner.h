#pragma once
// RandomPruner ("random", spec §3.7, §12.4): a uniformly random subset of the candidates, the
// same for every kv head, drawn from a generator seeded by (config seed, step, layer), so a run
// is reproducible and independent of the order layers are processed in. Kept entries stay in
// stream order like every pruner's. Thread-safety: const methods only.

#include <cstdint>

#include "common/compress/pruner.h"

namespace ctxmem::compress {

class RandomPruner final : public Pruner {
 public:
  explicit RandomPruner(uint64_t seed) : seed_(seed) {}
  std::string_view name() const override { return "random"; }

 protected:
  // Rank = a random permutation of 0..n-1 (no ties), computed on the CPU so that CPU and GPU
  // runs keep the same entries. Hidden memory entries keep the rank they were drawn with.
  at::Tensor Rank(const PruneInput& input) const override;

 private:
  uint64_t seed_;  // constant after construction
};

}  // namespace ctxmem::compress
