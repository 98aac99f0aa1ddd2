#pragma once
// PerceiverPruner ("perceiver", spec §3.9, §12.6): learned queries score the candidates' pre-RoPE
// keys. Per layer l with weights (Q, Wq, Wk) and temperature tau:
//   K = keys flattened over kv heads per candidate slot  [n, n_kv_heads * head_dim]
//   k = K Wk^T, q = Q[:n_q] Wq^T, both split into n_kv_heads heads of d_query / n_kv_heads
//   P = softmax(q k^T / tau) over the candidates         [n_kv_heads, n_q, n]
// (no 1/sqrt(d) scaling, as the seed). n_q = query_len, or the target when it is smaller (the
// seed uses the first compressed_chunk_size queries at inference). Which entries are kept
// depends on the routing:
//   kRank (default, §12.6): mean of P over the queries, per-head top-k.
//   kPositional: candidates split into n_q contiguous segments (the last one shorter), query i
//     keeps the best of segment i by its own P; each query keeps target / n_q entries, the first
//     target mod n_q queries one more (the seed required target divisible by query_len).
//   kGreedy: each candidate goes to its arg-max query (+1 bonus on that pair); each query then
//     keeps its share (as above) of the best bonus-adjusted entries.
//   kRandom: a random subset seeded by (seed, step, layer), the scores ignored (the seed's
//     default "random segments"; useful only as a control).
// With positional / greedy routing fewer than target entries can be picked (a short segment, two
// queries picking the same entry); the rest are filled by the kRank order. The rank kept with an
// entry is its mean P, plus 2 when a routed query picked it. The straight-through factor of
// §3.9 is a training device (value 1 in the forward pass) and is not applied.
// Keys are flattened per candidate slot, as the seed does with its (len, kv_heads, head_dim)
// cache: after the first step heads hold different tokens in the same slot.
// Thread-safety: const methods only; the weights are shared read-only.

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/compress/pruner.h"
#include "common/learned/perceiver_weights.h"

namespace ctxmem::learned {

enum class PerceiverRouting { kRank, kPositional, kGreedy, kRandom };
// "rank" | "positional" | "greedy" | "random"; InvalidArgument lists them.
absl::StatusOr<PerceiverRouting> ParsePerceiverRouting(std::string_view name);
std::string_view PerceiverRoutingName(PerceiverRouting routing);

// P of §3.9 for one layer: learned queries `query` [query_len, d_query] (the first n_q used),
// Wq [d_query, d_query], Wk [d_query, d_model] ([out, in]) over the pre-RoPE `keys` [n_kv_heads,
// n, head_dim] flattened per slot (d_model = n_kv_heads * head_dim): [n_kv_heads, n_q, n] fp32,
// rows summing to 1. Differentiable w.r.t. the weights (the trainer's modules call it). May throw.
at::Tensor PerceiverAttention(const at::Tensor& query, const at::Tensor& wq, const at::Tensor& wk,
                              const at::Tensor& keys, int64_t n_q, double temperature);

// What PerceiverPruner ranks by, from the attention p [n_kv_heads, n_q, n] fp32 of its queries
// over n candidates: the mean over the queries, plus 2 on the entries a routed query picked
// (positional, greedy; kRandom is handled by the pruner and gives the mean here). The perceiver
// fuser picks its anchors with it (spec §7). [n_kv_heads, n] on p's device; may throw.
at::Tensor PerceiverRoutedRank(PerceiverRouting routing, const at::Tensor& p, int64_t target);

class PerceiverPruner final : public compress::Pruner {
 public:
  // `weights` must not be null (Create() checks).
  static absl::StatusOr<std::unique_ptr<PerceiverPruner>> Create(
      std::shared_ptr<const PerceiverWeights> weights,
      PerceiverRouting routing = PerceiverRouting::kRank, uint64_t seed = 0);

  std::string_view name() const override { return "perceiver"; }
  const PerceiverWeights& weights() const { return *weights_; }
  PerceiverRouting routing() const { return routing_; }

  // What the registry answers for a config without perceiver_weights: FailedPrecondition
  // saying that trained weights are required (never a silent random fallback).
  static absl::Status NoWeightsError();

 protected:
  // Throws c10::Error (Select() turns it into an error status) when keys are missing or the
  // weights do not fit the layer / key shape (the message says which numbers disagree).
  at::Tensor Rank(const compress::PruneInput& input) const override;

 private:
  PerceiverPruner(std::shared_ptr<const PerceiverWeights> weights, PerceiverRouting routing,
                  uint64_t seed)
      : weights_(std::move(weights)), routing_(routing), seed_(seed) {}

  // Constant after construction.
  std::shared_ptr<const PerceiverWeights> weights_;
  PerceiverRouting routing_;
  uint64_t seed_;
};

}  // namespace ctxmem::learned
