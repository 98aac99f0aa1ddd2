#pragma once
// H2oPruner ("h2o", spec §3.1): heavy hitters by cumulative attention. A candidate's rank is the
// attention it received from this chunk's scoring queries (summed, not normalised) plus the
// rank it carried in memory, so an entry accumulates attention for as long as it is kept.
// The running score lives with the memory (PruneInput::memory_rank), so unlike the seed (FM
// and IM only) h2o works with every memory type. Thread-safety: const methods only.

#include "common/compress/pruner.h"

namespace ctxmem::compress {

class H2oPruner final : public Pruner {
 public:
  std::string_view name() const override { return "h2o"; }
  bool needs_scores() const override { return true; }
  bool reads_memory_rank() const override { return true; }

 protected:
  at::Tensor Rank(const PruneInput& input) const override;
};

}  // namespace ctxmem::compress
