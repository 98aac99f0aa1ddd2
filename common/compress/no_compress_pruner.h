#pragma once
// NoCompressPruner ("no_compress", spec §3.8): the reference. Every entry is kept, so chunked
// prefill equals one full-attention forward; memory_size and the memory type do not apply and
// the memory grows with the context. Thread-safety: const methods only.

#include "common/compress/pruner.h"

namespace ctxmem::compress {

class NoCompressPruner final : public Pruner {
 public:
  std::string_view name() const override { return "no_compress"; }
  MemoryCarry carry() const override { return MemoryCarry::kEverything; }

 protected:
  // Not used by the driver (carry() is kEverything); ranks everything equal, so Select() with
  // target >= n_candidates keeps all.
  at::Tensor Rank(const PruneInput& input) const override;
};

}  // namespace ctxmem::compress
