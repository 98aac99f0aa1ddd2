#pragma once
// ChunkPrefixPruner ("chunk_prefix", spec §3.6): keeps the oldest `target` non-sink entries, the
// same for every kv head. Under FM the memory freezes to the first tokens after the sinks.
// Needs no scores. Thread-safety: const methods only.

#include "common/compress/pruner.h"

namespace ctxmem::compress {

class ChunkPrefixPruner final : public Pruner {
 public:
  std::string_view name() const override { return "chunk_prefix"; }

 protected:
  // Rank = minus the stream index: older entries rank higher.
  at::Tensor Rank(const PruneInput& input) const override;
};

}  // namespace ctxmem::compress
