#include "common/train/llm_fuser_module.h"

#include <ATen/ATen.h>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/model/torch_call.h"
#include "common/model/transformer.h"
#include "common/status.h"

namespace ctxmem::train {

void LlmFuserModule::Register() {
  t_.embeddings = register_parameter("memory_embeddings", t_.embeddings);
  for (size_t l = 0; l < t_.lora_a.size(); ++l) {
    for (int i = 0; i < 3; ++i) {
      t_.lora_a[l][i] =
          register_parameter(absl::StrCat("layers_", l, "_", i, "_a"), t_.lora_a[l][i]);
      t_.lora_b[l][i] =
          register_parameter(absl::StrCat("layers_", l, "_", i, "_b"), t_.lora_b[l][i]);
    }
  }
}

absl::StatusOr<std::shared_ptr<LlmFuserModule>> LlmFuserModule::Create(
    const model::Transformer& model, const LlmFuserShape& shape) {
  if (shape.query_len < 1 || shape.rank < 1 || !(shape.alpha > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("llm_fuser: query_len=", shape.query_len,
                                                   " rank=", shape.rank, " alpha=", shape.alpha,
                                                   " must be >= 1, >= 1, > 0"));
  }
  const model::ModelConfig& c = model.config();
  std::shared_ptr<LlmFuserModule> m(new LlmFuserModule());
  m->shape_ = shape;
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("llm_fuser init", [&] {
    torch::NoGradGuard no_grad;
    at::Tensor mean = model.weights().tok_embd.to(at::kFloat).mean(0).to(at::kCPU);  // [hidden]
    m->t_.embeddings = mean.unsqueeze(0).repeat({shape.query_len, 1}) +
                       torch::randn({shape.query_len, c.hidden}) * 0.02;
    const double bound = 1.0 / std::sqrt(static_cast<double>(c.hidden));
    const int64_t outs[3] = {c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim,
                             c.n_kv_heads * c.head_dim};
    for (int64_t l = 0; l < c.n_layers; ++l) {
      std::array<at::Tensor, 3> a, b;
      for (int i = 0; i < 3; ++i) {
        a[i] = torch::empty({shape.rank, c.hidden}).uniform_(-bound, bound);
        b[i] = torch::zeros({outs[i], shape.rank});
      }
      m->t_.lora_a.push_back(a);
      m->t_.lora_b.push_back(b);
    }
    m->t_.scale = shape.alpha / static_cast<double>(shape.rank);
    m->Register();
  }));
  return m;
}

absl::StatusOr<std::shared_ptr<LlmFuserModule>> LlmFuserModule::FromWeights(
    const learned::LlmFuserWeights& weights) {
  std::shared_ptr<LlmFuserModule> m(new LlmFuserModule());
  const learned::LlmFuserTensors& t = weights.tensors();
  m->shape_.query_len = t.embeddings.size(0);
  m->shape_.rank = weights.rank();
  m->shape_.alpha = t.scale * static_cast<double>(weights.rank());
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("llm_fuser copy", [&] {
    m->t_.embeddings = t.embeddings.clone();
    for (size_t l = 0; l < t.lora_a.size(); ++l) {
      std::array<at::Tensor, 3> a, b;
      for (int i = 0; i < 3; ++i) {
        a[i] = t.lora_a[l][i].clone();
        b[i] = t.lora_b[l][i].clone();
      }
      m->t_.lora_a.push_back(a);
      m->t_.lora_b.push_back(b);
    }
    m->t_.scale = t.scale;
    m->Register();
  }));
  return m;
}

absl::Status LlmFuserModule::Save(const std::string& path,
                                  const std::map<std::string, std::string>& metadata) const {
  learned::LearnedFile f = learned::LlmFuserWeights::ToFile(t_, shape_.alpha);
  for (const auto& [k, v] : metadata) f.metadata.emplace(k, v);
  return f.Save(path);
}

}  // namespace ctxmem::train
