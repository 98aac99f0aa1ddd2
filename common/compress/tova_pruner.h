#pragma once
// TovaPruner ("tova", spec §3.2 + §2): per kv head, the causally normalised mean attention the
// chunk's scoring queries give each candidate; top-k. (The seed's TOVA, not the original paper's
// last-query, head-averaged TOVA.) Thread-safety: const methods only.

#include "common/compress/pruner.h"

namespace ctxmem::compress {

class TovaPruner final : public Pruner {
 public:
  std::string_view name() const override { return "tova"; }
  bool needs_scores() const override { return true; }

 protected:
  at::Tensor Rank(const PruneInput& input) const override;
};

}  // namespace ctxmem::compress
