#pragma once
// LlmFuserModule: the llm fuser's parameters (spec §7, learned/llm_fuser.h) as a trainable torch
// module: query_len memory-token embeddings and LoRA A, B on q/k/v of every layer. Computes
// exactly what learned::LlmFuser fuses with (both call learned::LlmFuseForward); saved in the
// llm_fuser file format.
// Initialisation (torch's generator, seeded by the trainer): embeddings = the mean token
// embedding + N(0, 0.02^2) per coordinate; A uniform +-1/sqrt(hidden) (PEFT's kaiming-uniform
// bound); B = 0, so an untrained fuser's memory tokens run the base model.
// Thread-safety: not thread-safe (parameters change under the optimizer).

#include <torch/nn/module.h>

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/learned/llm_fuser.h"

namespace ctxmem::model {
class Transformer;
}

namespace ctxmem::train {

struct LlmFuserShape {
  int64_t query_len = 64;  // distinct memory tokens
  int64_t rank = 16;       // LoRA r
  double alpha = 32;       // LoRA alpha (scale alpha / r; the seed: r 128, alpha 256)
};

class LlmFuserModule : public torch::nn::Module {
 public:
  static absl::StatusOr<std::shared_ptr<LlmFuserModule>> Create(const model::Transformer& model,
                                                                const LlmFuserShape& shape);
  static absl::StatusOr<std::shared_ptr<LlmFuserModule>> FromWeights(
      const learned::LlmFuserWeights& weights);

  const learned::LlmFuserTensors& tensors() const { return t_; }  // the parameters
  const LlmFuserShape& shape() const { return shape_; }
  absl::Status Save(const std::string& path,
                    const std::map<std::string, std::string>& metadata = {}) const;

 private:
  LlmFuserModule() = default;
  void Register();
  LlmFuserShape shape_;
  learned::LlmFuserTensors t_;
};

}  // namespace ctxmem::train
