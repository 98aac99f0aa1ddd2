#pragma once
// LocalWindowPruner ("local_window", spec §3.8, §12.11): no memory at all. Every chunk attends
// only to itself (block-diagonal attention); nothing, not even sinks, is carried over.
// Thread-safety: const methods only.

#include "common/compress/pruner.h"

namespace ctxmem::compress {

class LocalWindowPruner final : public Pruner {
 public:
  std::string_view name() const override { return "local_window"; }
  MemoryCarry carry() const override { return MemoryCarry::kNothing; }

 protected:
  // Not used by the driver (carry() is kNothing); ranks everything equal.
  at::Tensor Rank(const PruneInput& input) const override;
};

}  // namespace ctxmem::compress
