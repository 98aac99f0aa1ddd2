#include "common/train/perceiver_module.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/blob/safetensors_writer.h"
#include "common/model/torch_call.h"
#include "common/status.h"

namespace ctxmem::train {

PerceiverModule::PerceiverModule(const PerceiverShape& shape) : shape_(shape) {
  torch::NoGradGuard no_grad;
  for (int64_t l = 0; l < shape.n_layers; ++l) {
    // Q ~ N(0, 1) [query_len, d_query]; Wq [d_query, d_query], Wk [d_query, d_model] ([out, in]).
    // (torch names may not hold dots; Save() writes the file's layers.<l>.* names.)
    query_.push_back(register_parameter(absl::StrCat("layers_", l, "_query"),
                                        torch::randn({shape.query_len, shape.d_query})));
    const double bq = 1.0 / std::sqrt(static_cast<double>(shape.d_query));
    const double bk = 1.0 / std::sqrt(static_cast<double>(shape.d_model));
    wq_.push_back(
        register_parameter(absl::StrCat("layers_", l, "_wq"),
                           torch::empty({shape.d_query, shape.d_query}).uniform_(-bq, bq)));
    wk_.push_back(
        register_parameter(absl::StrCat("layers_", l, "_wk"),
                           torch::empty({shape.d_query, shape.d_model}).uniform_(-bk, bk)));
  }
}

absl::StatusOr<std::shared_ptr<PerceiverModule>> PerceiverModule::Create(
    const PerceiverShape& shape) {
  if (shape.n_layers < 1 || shape.query_len < 1 || shape.d_query < 1 || shape.d_model < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("perceiver shape: n_layers=", shape.n_layers, " query_len=", shape.query_len,
                     " d_query=", shape.d_query, " d_model=", shape.d_model, " must all be >= 1"));
  }
  if (!(shape.temperature > 0) || !std::isfinite(shape.temperature)) {
    return absl::InvalidArgumentError(
        absl::StrCat("perceiver temperature=", shape.temperature, " must be > 0"));
  }
  std::shared_ptr<PerceiverModule> m;
  CTXMEM_RETURN_IF_ERROR(model::TorchCall(
      "perceiver init", [&] { m = std::shared_ptr<PerceiverModule>(new PerceiverModule(shape)); }));
  return m;
}

absl::StatusOr<std::shared_ptr<PerceiverModule>> PerceiverModule::FromWeights(
    const learned::PerceiverWeights& weights) {
  PerceiverShape shape;
  shape.n_layers = weights.n_layers();
  shape.query_len = weights.query_len();
  shape.d_query = weights.d_query();
  shape.d_model = weights.d_model();
  shape.temperature = weights.temperature();
  CTXMEM_ASSIGN_OR_RETURN(std::shared_ptr<PerceiverModule> m, Create(shape));
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("perceiver copy", [&] {
    torch::NoGradGuard no_grad;
    for (int64_t l = 0; l < shape.n_layers; ++l) {
      m->query_[l].copy_(weights.layer(l).query);
      m->wq_[l].copy_(weights.layer(l).wq);
      m->wk_[l].copy_(weights.layer(l).wk);
    }
  }));
  return m;
}

at::Tensor PerceiverModule::MeanAttention(int64_t layer, const at::Tensor& keys,
                                          int64_t target) const {
  TORCH_CHECK(layer >= 0 && layer < shape_.n_layers, "perceiver layer ", layer, " out of range");
  const int64_t h = keys.size(0), n = keys.size(1), head_dim = keys.size(2);
  TORCH_CHECK(h * head_dim == shape_.d_model && shape_.d_query % h == 0, "perceiver: keys of ", h,
              " x ", head_dim, " do not fit d_model=", shape_.d_model);
  const int64_t dh = shape_.d_query / h;
  const int64_t n_q = std::max<int64_t>(1, std::min(shape_.query_len, target));
  const c10::Device device = keys.device();
  // Same operations, in the same order, as PerceiverPruner::Rank.
  at::Tensor flat = keys.to(at::kFloat).permute({1, 0, 2}).reshape({n, h * head_dim});
  at::Tensor k =
      at::matmul(flat, wk_[layer].to(device).t()).view({n, h, dh}).permute({1, 0, 2});  // [h,n,dh]
  at::Tensor q = at::matmul(query_[layer].narrow(0, 0, n_q).to(device), wq_[layer].to(device).t())
                     .view({n_q, h, dh})
                     .permute({1, 0, 2});  // [h, n_q, dh]
  at::Tensor p =
      at::softmax(at::matmul(q, k.transpose(1, 2)) / shape_.temperature, -1);  // [h, n_q, n]
  return p.mean(1);                                                            // [h, n]
}

absl::StatusOr<learned::PerceiverWeights> PerceiverModule::ToWeights(
    const std::string& source) const {
  std::vector<learned::PerceiverLayerWeights> layers;
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("perceiver weights", [&] {
    for (int64_t l = 0; l < shape_.n_layers; ++l) {
      layers.push_back({query_[l].detach().to(at::kCPU).clone(),
                        wq_[l].detach().to(at::kCPU).clone(),
                        wk_[l].detach().to(at::kCPU).clone()});
    }
  }));
  return learned::PerceiverWeights::Create(std::move(layers), shape_.temperature, source);
}

absl::Status PerceiverModule::Save(const std::string& path,
                                   const std::map<std::string, std::string>& metadata) const {
  CTXMEM_ASSIGN_OR_RETURN(learned::PerceiverWeights w, ToWeights(path));
  std::vector<blob::RawTensor> tensors;
  for (int64_t l = 0; l < w.n_layers(); ++l) {
    const learned::PerceiverLayerWeights& lw = w.layer(l);
    for (const auto& [name, t] : {std::pair{"query", &lw.query}, std::pair{"wq.weight", &lw.wq},
                                  std::pair{"wk.weight", &lw.wk}}) {
      tensors.push_back({absl::StrCat("layers.", l, ".", name),
                         weights::StDtype::kF32,
                         {t->size(0), t->size(1)},
                         t->data_ptr()});
    }
  }
  blob::MetadataEntries meta;
  // %.17g round-trips a double exactly.
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", shape_.temperature);
  meta.emplace_back("temperature", buf);
  for (const auto& [k, v] : metadata) {
    if (k != "temperature") meta.emplace_back(k, v);
  }
  CTXMEM_ASSIGN_OR_RETURN(blob::SafetensorsLayout layout,
                          blob::SafetensorsLayout::Build(std::move(tensors), std::move(meta)));
  return layout.WriteToFile(path);
}

}  // namespace ctxmem::train
