#include "common/learned/perceiver_pruner.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/compress/top_k.h"

namespace ctxmem::learned {
namespace {

// SplitMix64 (Steele, Lea, Flood 2014), as RandomPruner: the same draws on every platform.
uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Entries query i keeps under positional / greedy routing: target split over n_q queries, the
// first target mod n_q one more.
int64_t Share(int64_t target, int64_t n_q, int64_t i) {
  return target / n_q + (i < target % n_q ? 1 : 0);
}

constexpr float kPickedBonus = 2.0f;  // ranks of routed picks sit above every mean P (<= 1)

}  // namespace

at::Tensor PerceiverAttention(const at::Tensor& query, const at::Tensor& wq, const at::Tensor& wk,
                              const at::Tensor& keys, int64_t n_q, double temperature) {
  const int64_t h = keys.size(0), n = keys.size(1), head_dim = keys.size(2);
  const int64_t dh = wq.size(0) / h;
  const c10::Device device = keys.device();
  // Keys flattened per slot: [n, h * head_dim] -> projected [n, d_query] -> [h, n, dh].
  at::Tensor flat = keys.to(at::kFloat).permute({1, 0, 2}).reshape({n, h * head_dim});
  at::Tensor k = at::matmul(flat, wk.to(device).t()).view({n, h, dh}).permute({1, 0, 2});
  // Queries: [n_q, d_query] -> [h, n_q, dh].
  at::Tensor q = at::matmul(query.narrow(0, 0, n_q).to(device), wq.to(device).t())
                     .view({n_q, h, dh})
                     .permute({1, 0, 2});
  return at::softmax(at::matmul(q, k.transpose(1, 2)) / temperature, -1);  // [h, n_q, n]
}

at::Tensor PerceiverRoutedRank(PerceiverRouting routing, const at::Tensor& p, int64_t target) {
  const int64_t h = p.size(0), n_q = p.size(1), n = p.size(2);
  const c10::Device device = p.device();
  at::Tensor mean = p.mean(1);  // [h, n]
  if (routing == PerceiverRouting::kRank || routing == PerceiverRouting::kRandom || target <= 0 ||
      n == 0) {
    return mean;
  }

  // Routed picks, computed on the CPU (n_q x n is small), then raised above every mean.
  at::Tensor pc = p.to(at::kCPU).contiguous();
  at::Tensor picked = at::zeros({h, n}, at::kBool);  // [h, n]
  if (routing == PerceiverRouting::kPositional) {
    const int64_t seg = (n + n_q - 1) / n_q;  // segment length (the seed pads to a multiple)
    for (int64_t i = 0; i < n_q; ++i) {
      const int64_t begin = std::min(n, i * seg);
      const int64_t len = std::min(n, begin + seg) - begin;
      const int64_t share = Share(target, n_q, i);
      if (len <= 0 || share <= 0) continue;
      at::Tensor idx =
          compress::TopKIndices(pc.select(1, i).narrow(1, begin, len), share);  // [h, <=share]
      picked.scatter_(1, idx + begin, true);
    }
  } else {                            // kGreedy
    at::Tensor owner = pc.argmax(1);  // [h, n], ties to the first query
    for (int64_t i = 0; i < n_q; ++i) {
      const int64_t share = Share(target, n_q, i);
      if (share <= 0) continue;
      at::Tensor adjusted = pc.select(1, i) + owner.eq(i).to(at::kFloat);  // [h, n]
      picked.scatter_(1, compress::TopKIndices(adjusted, share), true);
    }
  }
  return mean + picked.to(device).to(at::kFloat) * kPickedBonus;
}

absl::StatusOr<PerceiverRouting> ParsePerceiverRouting(std::string_view name) {
  if (name == "rank") return PerceiverRouting::kRank;
  if (name == "positional") return PerceiverRouting::kPositional;
  if (name == "greedy") return PerceiverRouting::kGreedy;
  if (name == "random") return PerceiverRouting::kRandom;
  return absl::InvalidArgumentError(absl::StrCat("perceiver routing '", std::string(name),
                                                 "' unknown; valid: rank, positional, greedy, "
                                                 "random"));
}

std::string_view PerceiverRoutingName(PerceiverRouting routing) {
  switch (routing) {
    case PerceiverRouting::kRank:
      return "rank";
    case PerceiverRouting::kPositional:
      return "positional";
    case PerceiverRouting::kGreedy:
      return "greedy";
    case PerceiverRouting::kRandom:
      return "random";
  }
  return "?";
}

absl::StatusOr<std::unique_ptr<PerceiverPruner>> PerceiverPruner::Create(
    std::shared_ptr<const PerceiverWeights> weights, PerceiverRouting routing, uint64_t seed) {
  if (weights == nullptr) return NoWeightsError();
  return std::unique_ptr<PerceiverPruner>(new PerceiverPruner(std::move(weights), routing, seed));
}

absl::Status PerceiverPruner::NoWeightsError() {
  return absl::FailedPreconditionError(
      "pruner 'perceiver' needs trained weights (spec §3.9) and none were given: it is never run "
      "with random weights. Name a safetensors file in CompressionConfig::perceiver_weights "
      "(`ctxmem ... --perceiver-weights FILE`), or build the pruner with "
      "PerceiverPruner::Create()");
}

at::Tensor PerceiverPruner::Rank(const compress::PruneInput& in) const {
  const int64_t n = in.n_candidates();
  const int64_t h = in.n_kv_heads;
  TORCH_CHECK(in.keys.defined(),
              "pruner perceiver: the candidates' keys (PruneInput::keys) are "
              "required");
  const PerceiverWeights& w = *weights_;
  TORCH_CHECK(in.layer >= 0 && in.layer < w.n_layers(), "pruner perceiver: ", w.source(), " has ",
              w.n_layers(), " layers, asked for layer ", in.layer);
  const int64_t head_dim = in.keys.size(2);
  TORCH_CHECK(h * head_dim == w.d_model() && w.d_query() % h == 0, "pruner perceiver: ", w.source(),
              " expects keys of d_model=", w.d_model(), " (d_query=", w.d_query(),
              " split over the kv heads), the model gives ", h, " kv heads x ", head_dim);
  const c10::Device device = in.keys.device();
  if (routing_ == PerceiverRouting::kRandom) {
    uint64_t state = seed_;
    state = SplitMix64(state) ^ static_cast<uint64_t>(in.step);
    state = SplitMix64(state) ^ static_cast<uint64_t>(in.layer);
    std::vector<float> perm(n);
    std::iota(perm.begin(), perm.end(), 0.0f);
    for (int64_t i = n - 1; i > 0; --i) {
      const uint64_t bound = static_cast<uint64_t>(i) + 1;
      const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
      uint64_t r = SplitMix64(state);
      while (r >= limit) r = SplitMix64(state);
      std::swap(perm[i], perm[r % bound]);
    }
    return at::tensor(perm, at::kFloat).to(device).unsqueeze(0).expand({h, n}).contiguous();
  }

  const PerceiverLayerWeights& lw = w.layer(in.layer);
  const int64_t n_q = std::max<int64_t>(1, std::min(w.query_len(), in.target));
  at::Tensor p = PerceiverAttention(lw.query, lw.wq, lw.wk, in.keys, n_q, w.temperature());
  return PerceiverRoutedRank(routing_, p, in.target);
}

}  // namespace ctxmem::learned
