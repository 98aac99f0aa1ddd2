#pragma once
// PerceiverFuserModule: the perceiver fuser's parameters (spec §7, learned/perceiver_fuser.h) as
// a trainable torch module, computing exactly what learned::PerceiverFuser fuses with (both call
// learned::PerceiverFuseLayer), plus the straight-through factor (value 1). Saved in the
// perceiver_fuser file format.
// Initialisation (torch's generator, seeded by the trainer): Q ~ N(0, 1); Wq, Wk, FFN layer 1 as
// nn.Linear (uniform +-1/sqrt(fan_in)); W = identity; LayerNorms weight 1, bias 0; FFN layer 2
// zero under "pre" norm (an untrained fuser is the bilinear-weighted sum), nn.Linear under "seed".
// Thread-safety: not thread-safe (parameters change under the optimizer).

#include <torch/nn/module.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/learned/perceiver_fuser.h"

namespace ctxmem::train {

class PerceiverFuserModule : public torch::nn::Module {
 public:
  // InvalidArgument for a shape PerceiverFuserWeights would refuse.
  static absl::StatusOr<std::shared_ptr<PerceiverFuserModule>> Create(
      const learned::PerceiverFuserShape& shape);
  static absl::StatusOr<std::shared_ptr<PerceiverFuserModule>> FromWeights(
      const learned::PerceiverFuserWeights& weights);

  // Per layer the fused {k, v} [n_kv_heads, target, head_dim] of the candidates [n_kv_heads, n,
  // head_dim]; differentiable. May throw.
  std::vector<std::pair<at::Tensor, at::Tensor>> Fuse(const std::vector<at::Tensor>& cand_k,
                                                      const std::vector<at::Tensor>& cand_v,
                                                      int64_t target) const;
  // Writes the perceiver_fuser file atomically; `metadata` adds entries.
  absl::Status Save(const std::string& path,
                    const std::map<std::string, std::string>& metadata = {}) const;

  const learned::PerceiverFuserShape& shape() const { return shape_; }

 private:
  explicit PerceiverFuserModule(const learned::PerceiverFuserShape& shape);
  learned::PerceiverFuserShape shape_;
  std::vector<learned::PerceiverFuserLayer> layers_;  // registered parameters
};

}  // namespace ctxmem::train
