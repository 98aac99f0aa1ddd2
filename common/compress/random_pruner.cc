#include "common/compress/random_pruner.h"

#include <ATen/ops/tensor.h>

#include <numeric>
#include <vector>

namespace ctxmem::compress {
namespace {

// SplitMix64 (Steele, Lea, Flood 2014): a small, well-mixed generator whose output is the same
// on every platform, unlike std:: distributions.
uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

at::Tensor RandomPruner::Rank(const PruneInput& input) const {
  const int64_t n_cols = input.memory_hidden ? input.n_chunk : input.n_candidates();
  uint64_t state = seed_;
  state = SplitMix64(state) ^ static_cast<uint64_t>(input.step);
  state = SplitMix64(state) ^ static_cast<uint64_t>(input.layer);
  // Fisher-Yates shuffle with an unbiased bounded draw (rejection sampling).
  std::vector<float> perm(n_cols);
  std::iota(perm.begin(), perm.end(), 0.0f);
  for (int64_t i = n_cols - 1; i > 0; --i) {
    const uint64_t bound = static_cast<uint64_t>(i) + 1;
    const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t r = SplitMix64(state);
    while (r >= limit) r = SplitMix64(state);
    std::swap(perm[i], perm[r % bound]);
  }
  auto rank = at::tensor(perm, at::kFloat)
                  .to(input.src.device())
                  .unsqueeze(0)
                  .expand({input.n_kv_heads, n_cols});  // [n_kv_heads, n_cols], same per head
  return PrependHiddenMemoryRank(input, rank.contiguous());
}

}  // namespace ctxmem::compress
