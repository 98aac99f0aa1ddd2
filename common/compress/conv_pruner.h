#pragma once
// ConvPruner ("conv", also registered as "snapkv"; spec §3.3): the column sums of §2 smoothed by
// a 1-D average pool along the keys (kernel k, stride 1, zero padding k/2 counted in the
// divisor, like avg_pool1d's default), then divided by the causal normaliser; top-k per kv
// head. Thread-safety: const methods only.

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "common/compress/pruner.h"

namespace ctxmem::compress {

class ConvPruner final : public Pruner {
 public:
  // InvalidArgument unless kernel_size is odd and >= 1.
  static absl::StatusOr<std::unique_ptr<Pruner>> Create(int64_t kernel_size);

  std::string_view name() const override { return "conv"; }
  bool needs_scores() const override { return true; }
  int64_t kernel_size() const { return kernel_size_; }

 protected:
  // Pools over the scored columns only ([memory ; chunk], or the chunk alone when the memory is
  // hidden), so the pool never mixes attention with stored ranks.
  at::Tensor Rank(const PruneInput& input) const override;

 private:
  explicit ConvPruner(int64_t kernel_size) : kernel_size_(kernel_size) {}
  int64_t kernel_size_;  // constant after construction
};

}  // namespace ctxmem::compress
