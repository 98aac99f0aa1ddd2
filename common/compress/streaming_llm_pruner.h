#pragma once
// StreamingLlmPruner ("streaming_llm", spec §3.5): keeps the most recent `target` non-sink
// entries, the same for every kv head; with sinks this is StreamingLLM. Needs no scores.
// Thread-safety: const methods only.

#include "common/compress/pruner.h"

namespace ctxmem::compress {

class StreamingLlmPruner final : public Pruner {
 public:
  std::string_view name() const override { return "streaming_llm"; }

 protected:
  // Rank = stream index: newer entries rank higher (exact up to 2^24 tokens, and ties go to
  // the more recent entry anyway).
  at::Tensor Rank(const PruneInput& input) const override;
};

}  // namespace ctxmem::compress
