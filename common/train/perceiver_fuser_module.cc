#include "common/train/perceiver_fuser_module.h"

#include <ATen/ATen.h>

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/model/torch_call.h"
#include "common/status.h"

namespace ctxmem::train {

PerceiverFuserModule::PerceiverFuserModule(const learned::PerceiverFuserShape& s) : shape_(s) {
  torch::NoGradGuard no_grad;
  auto uniform = [](std::vector<int64_t> shape, int64_t fan_in) {
    const double b = 1.0 / std::sqrt(static_cast<double>(fan_in));
    return torch::empty(shape).uniform_(-b, b);
  };
  for (int64_t l = 0; l < s.n_layers; ++l) {
    learned::PerceiverFuserLayer w;
    auto reg = [&](const char* name, at::Tensor t) {
      // torch names may not hold dots; Save() writes the file's layers.<l>.* names.
      return register_parameter(absl::StrCat("layers_", l, "_", name), std::move(t));
    };
    w.query = reg("query", torch::randn({s.query_len, s.d_query}));
    w.wq = reg("wq", uniform({s.d_query, s.d_query}, s.d_query));
    w.wk = reg("wk", uniform({s.d_query, s.d_model}, s.d_model));
    w.bilinear = reg("bilinear", torch::eye(s.head_dim));
    w.norm1_w = reg("norm1_w", torch::ones({s.head_dim}));
    w.norm1_b = reg("norm1_b", torch::zeros({s.head_dim}));
    w.ffn1_w = reg("ffn1_w", uniform({s.d_query, s.head_dim}, s.head_dim));
    w.ffn1_b = reg("ffn1_b", uniform({s.d_query}, s.head_dim));
    w.ffn2_w = reg("ffn2_w", s.seed_norm ? uniform({s.head_dim, s.d_query}, s.d_query)
                                         : torch::zeros({s.head_dim, s.d_query}));
    w.ffn2_b =
        reg("ffn2_b", s.seed_norm ? uniform({s.head_dim}, s.d_query) : torch::zeros({s.head_dim}));
    w.norm2_w = reg("norm2_w", torch::ones({s.head_dim}));
    w.norm2_b = reg("norm2_b", torch::zeros({s.head_dim}));
    layers_.push_back(std::move(w));
  }
}

absl::StatusOr<std::shared_ptr<PerceiverFuserModule>> PerceiverFuserModule::Create(
    const learned::PerceiverFuserShape& s) {
  if (s.n_layers < 1 || s.query_len < 1 || s.d_query < 1 || s.d_model < 1 || s.head_dim < 1 ||
      s.d_model % s.head_dim != 0 || s.fuse_k < 1 || !(s.temperature > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("perceiver_fuser shape: n_layers=", s.n_layers, " query_len=", s.query_len,
                     " d_query=", s.d_query, " d_model=", s.d_model, " head_dim=", s.head_dim,
                     " fuse_k=", s.fuse_k, " temperature=", s.temperature,
                     " (all >= 1, d_model a multiple of head_dim, temperature > 0)"));
  }
  std::shared_ptr<PerceiverFuserModule> m;
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("perceiver_fuser init", [&] {
    m = std::shared_ptr<PerceiverFuserModule>(new PerceiverFuserModule(s));
  }));
  return m;
}

absl::StatusOr<std::shared_ptr<PerceiverFuserModule>> PerceiverFuserModule::FromWeights(
    const learned::PerceiverFuserWeights& weights) {
  CTXMEM_ASSIGN_OR_RETURN(std::shared_ptr<PerceiverFuserModule> m, Create(weights.shape()));
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("perceiver_fuser copy", [&] {
    torch::NoGradGuard no_grad;
    for (int64_t l = 0; l < weights.shape().n_layers; ++l) {
      const learned::PerceiverFuserLayer& src = weights.layer(l);
      learned::PerceiverFuserLayer& dst = m->layers_[l];
      for (auto [d, s] :
           {std::pair{&dst.query, &src.query}, std::pair{&dst.wq, &src.wq},
            std::pair{&dst.wk, &src.wk}, std::pair{&dst.bilinear, &src.bilinear},
            std::pair{&dst.norm1_w, &src.norm1_w}, std::pair{&dst.norm1_b, &src.norm1_b},
            std::pair{&dst.ffn1_w, &src.ffn1_w}, std::pair{&dst.ffn1_b, &src.ffn1_b},
            std::pair{&dst.ffn2_w, &src.ffn2_w}, std::pair{&dst.ffn2_b, &src.ffn2_b},
            std::pair{&dst.norm2_w, &src.norm2_w}, std::pair{&dst.norm2_b, &src.norm2_b}}) {
        d->copy_(*s);
      }
    }
  }));
  return m;
}

std::vector<std::pair<at::Tensor, at::Tensor>> PerceiverFuserModule::Fuse(
    const std::vector<at::Tensor>& cand_k, const std::vector<at::Tensor>& cand_v,
    int64_t target) const {
  std::vector<std::pair<at::Tensor, at::Tensor>> out;
  for (size_t l = 0; l < cand_k.size(); ++l) {
    learned::FusedLayer f = learned::PerceiverFuseLayer(layers_[l], shape_, cand_k[l], cand_v[l],
                                                        target, /*straight_through=*/true);
    out.emplace_back(f.k, f.v);
  }
  return out;
}

absl::Status PerceiverFuserModule::Save(const std::string& path,
                                        const std::map<std::string, std::string>& metadata) const {
  learned::LearnedFile f = learned::PerceiverFuserWeights::ToFile(layers_, shape_);
  for (const auto& [k, v] : metadata) f.metadata.emplace(k, v);
  return f.Save(path);
}

}  // namespace ctxmem::train
