#pragma once
// PerceiverFuser ("perceiver_fuser", spec §7, the seed's SparseFuserPerceiver): per layer,
//   1. the perceiver scorer of §3.9 (queries Q, Wq, Wk) with positional routing picks `target`
//      anchors among the n candidates (PerceiverRoutedRank; top-target, ascending);
//   2. each anchor a takes itself and its fuse_k - 1 predecessors a-fuse_k+1..a (clamped at 0),
//      weighted by softmax_j(k_a W k_j) with a bilinear W [head_dim, head_dim] (identity at
//      init, shared by the kv heads; no scaling, as the seed), and sums them: fused K and V;
//   3. post-processing, the same weights applied to K and to V separately:
//        pre  (ctxmem default): x + FFN(LN1(x)), FFN = head_dim -> d_query -> head_dim with ReLU
//             and its output layer zero at init, so an untrained fuser is exactly step 2;
//        seed (as the seed): LN2(LN1(x) + FFN(LN1(x))): renormalises K and V to unit scale, which
//             an untrained fuser cannot undo (a plausible reason why the seed's fuser training
//             "was not successful"; kept for comparison);
//   4. in training, both multiplied by the straight-through factor 1 + p_a - sg(p_a), p_a the
//      anchor's mean perceiver attention (value 1: inference skips it).
// src of a fused entry = its anchor's src (the newest token it summarises, fuser.h).
// Weights file (LearnedFile, "ctxmem.method" = "perceiver_fuser"), per layer l, fp32:
//   layers.<l>.query [query_len, d_query], .wq.weight [d_query, d_query],
//   .wk.weight [d_query, d_model], .bilinear [head_dim, head_dim], .norm1.{weight,bias}
//   [head_dim], .ffn1.weight [d_query, head_dim], .ffn1.bias [d_query], .ffn2.weight
//   [head_dim, d_query], .ffn2.bias [head_dim], .norm2.{weight,bias} [head_dim];
//   metadata "temperature" (> 0, default 1), "fuse_k" (>= 1, default 4), "norm" (pre | seed).
// Thread-safety: const methods only; the weights are shared read-only.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/compress/fuser.h"
#include "common/learned/learned_file.h"

namespace ctxmem::learned {

// One layer's tensors (loaded weights, or a training module's parameters).
struct PerceiverFuserLayer {
  at::Tensor query;             // [query_len, d_query]
  at::Tensor wq;                // [d_query, d_query] ([out, in])
  at::Tensor wk;                // [d_query, d_model]
  at::Tensor bilinear;          // [head_dim, head_dim]
  at::Tensor norm1_w, norm1_b;  // [head_dim]
  at::Tensor ffn1_w;            // [d_query, head_dim]
  at::Tensor ffn1_b;            // [d_query]
  at::Tensor ffn2_w;            // [head_dim, d_query]
  at::Tensor ffn2_b;            // [head_dim]
  at::Tensor norm2_w, norm2_b;  // [head_dim]
};

struct PerceiverFuserShape {
  int64_t n_layers = 0;
  int64_t query_len = 64;
  int64_t d_query = 96;  // divisible by n_kv_heads
  int64_t d_model = 0;   // n_kv_heads * head_dim
  int64_t head_dim = 0;
  double temperature = 1.0;
  int64_t fuse_k = 4;      // entries fused per anchor (the anchor and its predecessors)
  bool seed_norm = false;  // the seed's post-LayerNorm instead of ctxmem's pre-norm residual
};

// Step 1-4 for one layer: keys, values [n_kv_heads, n, head_dim] (pre-RoPE) -> `target` fused
// entries. Differentiable w.r.t. the layer's tensors (not through the anchor choice).
struct FusedLayer {
  at::Tensor k, v;     // [n_kv_heads, target, head_dim] fp32
  at::Tensor anchors;  // [n_kv_heads, target] int64 candidate indices, ascending
};
FusedLayer PerceiverFuseLayer(const PerceiverFuserLayer& w, const PerceiverFuserShape& shape,
                              const at::Tensor& keys, const at::Tensor& values, int64_t target,
                              bool straight_through);

class PerceiverFuserWeights {
 public:
  static absl::StatusOr<PerceiverFuserWeights> Load(const std::string& path);
  // Parses (and checks) `file`; `source` names it in errors.
  static absl::StatusOr<PerceiverFuserWeights> FromFile(const LearnedFile& file,
                                                        const std::string& source);
  // The file form ("ctxmem.method" and the shape's metadata set) of `layers`.
  static LearnedFile ToFile(const std::vector<PerceiverFuserLayer>& layers,
                            const PerceiverFuserShape& shape);

  const PerceiverFuserShape& shape() const { return shape_; }
  const PerceiverFuserLayer& layer(int64_t l) const { return layers_[l]; }
  const std::string& source() const { return source_; }
  // InvalidArgument saying which numbers disagree with the model.
  absl::Status CheckFits(int64_t n_layers, int64_t n_kv_heads, int64_t head_dim) const;

 private:
  PerceiverFuserShape shape_;
  std::vector<PerceiverFuserLayer> layers_;
  std::string source_;
};

class PerceiverFuser final : public compress::Fuser {
 public:
  explicit PerceiverFuser(std::shared_ptr<const PerceiverFuserWeights> weights)
      : weights_(std::move(weights)) {}
  std::string_view name() const override { return "perceiver_fuser"; }

  // FailedPrecondition: the built-in name has no weights (use --learned NAME=FILE).
  static absl::Status NoWeightsError();

 protected:
  // Throws when the weights do not fit the candidates (the message says which numbers).
  std::vector<compress::LayerMemory> FuseLayers(const compress::FuseInput& input) const override;

 private:
  std::shared_ptr<const PerceiverFuserWeights> weights_;  // constant after construction
};

}  // namespace ctxmem::learned
