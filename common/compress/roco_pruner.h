#pragma once
// RocoPruner ("roco", spec §3.4, §12.3): robust cache omission. Per kv head, the causally
// normalised mean attention of §2 and its standard deviation over the scoring queries
// (per-key second moment, the intended definition rather than the seed's global sum); the
// target/2 keys with the lowest std get mean 0, then top-k on the result.
// Thread-safety: const methods only.

#include "common/compress/pruner.h"

namespace ctxmem::compress {

class RocoPruner final : public Pruner {
 public:
  std::string_view name() const override { return "roco"; }
  bool needs_scores() const override { return true; }

 protected:
  // Among equal std the older key is zeroed first (§12.5's "recent wins", mirrored). Hidden
  // memory entries (DOUBLE_COMPRESS) have no attention this step: they keep their rank and
  // are never zeroed; the target/2 lowest-std keys are then picked among the chunk's keys.
  at::Tensor Rank(const PruneInput& input) const override;
};

}  // namespace ctxmem::compress
