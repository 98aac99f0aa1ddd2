#pragma once
// PerceiverModule: the perceiver pruner's parameters (spec §3.9) as a trainable torch module,
// one (Q, Wq, Wk) per LLM layer, computing exactly what learned::PerceiverPruner ranks with
// under rank routing: mean over the first n_q queries of P = softmax(q k^T / tau) over the
// candidates, per kv head. Saved in the perceiver_weights.h file format, so a trained file is
// what `--perceiver-weights` and `--learned` load.
// Initialisation (seeded through torch's generator): Q ~ N(0, 1) as the seed's randn; Wq, Wk
// as nn.Linear (uniform +-1/sqrt(fan_in)).
// Thread-safety: not thread-safe (parameters change under the optimizer).

#include <torch/nn/module.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/learned/perceiver_weights.h"

namespace ctxmem::train {

struct PerceiverShape {
  int64_t n_layers = 0;
  int64_t query_len = 64;  // the seed's query_len = compressed chunk size
  int64_t d_query = 96;    // divisible by the model's n_kv_heads
  int64_t d_model = 0;     // n_kv_heads * head_dim
  double temperature = 1.0;
};

class PerceiverModule : public torch::nn::Module {
 public:
  // InvalidArgument for a shape that PerceiverWeights::Create would refuse.
  static absl::StatusOr<std::shared_ptr<PerceiverModule>> Create(const PerceiverShape& shape);
  // Parameters copied from trained weights (fine-tuning, evaluation of a file).
  static absl::StatusOr<std::shared_ptr<PerceiverModule>> FromWeights(
      const learned::PerceiverWeights& weights);

  // Mean attention of the queries over the candidates of `layer`: keys [h, n, head_dim]
  // (pre-RoPE, any float dtype) -> [h, n] fp32, each row summing to 1; n_q = min(query_len,
  // max(1, target)) as PerceiverPruner. Differentiable w.r.t. the parameters. May throw.
  at::Tensor MeanAttention(int64_t layer, const at::Tensor& keys, int64_t target) const;

  // Detached fp32 CPU copies as PerceiverWeights (named `source` in errors).
  absl::StatusOr<learned::PerceiverWeights> ToWeights(const std::string& source) const;
  // Writes the perceiver_weights.h format atomically; `metadata` adds __metadata__ entries
  // (temperature is always written).
  absl::Status Save(const std::string& path,
                    const std::map<std::string, std::string>& metadata = {}) const;

  const PerceiverShape& shape() const { return shape_; }

 private:
  explicit PerceiverModule(const PerceiverShape& shape);
  PerceiverShape shape_;
  std::vector<torch::Tensor> query_, wq_, wk_;  // per layer, registered parameters
};

}  // namespace ctxmem::train
