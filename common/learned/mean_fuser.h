#pragma once
// MeanFuser ("mean_fuser"): the training-free fuser every learned fuser must beat (spec §7;
// pooling has been reported to beat learned gist tokens). Per layer and kv head, the n
// candidates (in stream order) are split into `target` contiguous groups whose sizes differ by
// at most one (the larger first), and each group becomes one entry: the mean of its pre-RoPE
// keys and the mean of its values; src = the group's newest token (fuser.h).
// Invariants (mean_fuser_test): target entries out; a group of identical entries gives that
// entry; candidates that fit the target are not touched (MemoryState passes them through).
// Thread-safety: const methods only; no state.

#include <string_view>

#include "common/compress/fuser.h"

namespace ctxmem::learned {

class MeanFuser final : public compress::Fuser {
 public:
  std::string_view name() const override { return "mean_fuser"; }

 protected:
  std::vector<compress::LayerMemory> FuseLayers(const compress::FuseInput& input) const override;
};

// The group of every candidate under MeanFuser's split: [n] int64 in [0, target).
at::Tensor GroupOfCandidate(int64_t n, int64_t target, c10::Device device);

}  // namespace ctxmem::learned
