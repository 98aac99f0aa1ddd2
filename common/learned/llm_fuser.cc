#include "common/learned/llm_fuser.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/model/kv_cache.h"
#include "common/model/transformer.h"
#include "common/status.h"

namespace ctxmem::learned {
namespace {

constexpr const char* kProj[3] = {"q", "k", "v"};

}  // namespace

absl::StatusOr<std::vector<std::pair<at::Tensor, at::Tensor>>> LlmFuseForward(
    const model::Transformer& model, const LlmFuserTensors& w, const std::vector<at::Tensor>& k,
    const std::vector<at::Tensor>& v, int64_t target) {
  const model::ModelConfig& mc = model.config();
  if (static_cast<int64_t>(k.size()) != mc.n_layers || k.size() != v.size() || target < 1) {
    return absl::InvalidArgumentError(absl::StrCat("llm_fuser: past of ", k.size(),
                                                   " layers for a model of ", mc.n_layers,
                                                   ", target=", target, " (>= 1)"));
  }
  const c10::Device dev = model.device();
  const int64_t p = k[0].size(1);
  const auto long_opts = at::TensorOptions().dtype(at::kLong).device(dev);
  model::KvCache past;
  const at::Tensor past_pos = at::arange(p, long_opts).unsqueeze(0);  // [1, P] slots
  for (size_t l = 0; l < k.size(); ++l) {
    past.k.push_back(model.RotateKeys(k[l].unsqueeze(0).to(at::kFloat), past_pos));  // [1,h,P,d]
    past.v.push_back(v[l].unsqueeze(0).to(at::kFloat));
  }
  past.next_position = p;
  const int64_t q_len = w.embeddings.size(0);
  const at::Tensor rows = at::arange(target, long_opts).remainder(q_len);  // ids cycle
  model::ForwardOptions fo;
  fo.logits = model::LogitsMode::kNone;
  fo.return_pre_rope_keys = true;
  fo.input_embeddings = w.embeddings.to(dev).index_select(0, rows).unsqueeze(0);  // [1, T, hid]
  fo.projection_delta = [&](int64_t layer, model::Projection proj,
                            const at::Tensor& h) -> at::Tensor {
    const int i = static_cast<int>(proj);
    const at::Tensor& a = w.lora_a[layer][i];  // [r, hidden]
    const at::Tensor& b = w.lora_b[layer][i];  // [n_out, r]
    return at::linear(at::linear(h, a.to(dev)), b.to(dev)) * w.scale;
  };
  const at::Tensor tokens = at::zeros({1, target}, long_opts);  // ignored (embeddings given)
  const at::Tensor positions = at::arange(p, p + target, long_opts).unsqueeze(0);
  CTXMEM_ASSIGN_OR_RETURN(model::ForwardResult r, model.Forward(tokens, positions, &past, fo));
  std::vector<std::pair<at::Tensor, at::Tensor>> out;
  for (int64_t l = 0; l < mc.n_layers; ++l) {
    out.emplace_back(r.k_pre_rope[l][0], r.v[l][0]);  // [h, T, d] each
  }
  return out;
}

absl::StatusOr<LlmFuserWeights> LlmFuserWeights::FromFile(const LearnedFile& file,
                                                          const std::string& source) {
  auto bad = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", parts...));
  };
  if (auto it = file.metadata.find("ctxmem.method");
      it == file.metadata.end() || it->second != "llm_fuser") {
    return bad("not an llm_fuser file (metadata ctxmem.method)");
  }
  auto e = file.tensors.find("memory_embeddings");
  if (e == file.tensors.end() || e->second.dim() != 2 || e->second.size(0) < 1) {
    return bad("memory_embeddings [query_len, hidden] is missing");
  }
  const int64_t hidden = e->second.size(1);
  int64_t n_layers = 0;
  while (file.tensors.count(absl::StrCat("layers.", n_layers, ".q.lora_a")) > 0) ++n_layers;
  if (n_layers == 0) return bad("no layers.0.q.lora_a");
  if (file.tensors.size() != 1 + 6 * static_cast<size_t>(n_layers)) {
    return bad(file.tensors.size(), " tensors; memory_embeddings and 6 per layer for ", n_layers,
               " layers expected (unknown or missing tensors)");
  }
  const at::Tensor& a0 = file.tensors.at("layers.0.q.lora_a");
  if (a0.dim() != 2 || a0.size(0) < 1) return bad("layers.0.q.lora_a must be [r, hidden]");
  const int64_t r = a0.size(0);
  LlmFuserWeights w;
  w.source_ = source;
  CTXMEM_ASSIGN_OR_RETURN(w.t_.embeddings,
                          file.Get(source, "memory_embeddings", {e->second.size(0), hidden}));
  for (int64_t l = 0; l < n_layers; ++l) {
    std::array<at::Tensor, 3> as, bs;
    for (int i = 0; i < 3; ++i) {
      const std::string base = absl::StrCat("layers.", l, ".", kProj[i]);
      CTXMEM_ASSIGN_OR_RETURN(as[i], file.Get(source, base + ".lora_a", {r, hidden}));
      auto b = file.tensors.find(base + ".lora_b");
      if (b == file.tensors.end() || b->second.dim() != 2) return bad(base, ".lora_b is missing");
      CTXMEM_ASSIGN_OR_RETURN(bs[i], file.Get(source, base + ".lora_b", {b->second.size(0), r}));
    }
    w.t_.lora_a.push_back(as);
    w.t_.lora_b.push_back(bs);
  }
  CTXMEM_ASSIGN_OR_RETURN(double alpha, file.Number(source, "lora_alpha", 2.0 * r));
  if (!(alpha > 0)) return bad("lora_alpha=", alpha, " must be > 0");
  w.t_.scale = alpha / static_cast<double>(r);
  return w;
}

absl::StatusOr<LlmFuserWeights> LlmFuserWeights::Load(const std::string& path) {
  CTXMEM_ASSIGN_OR_RETURN(LearnedFile file, LearnedFile::Load(path));
  return FromFile(file, path);
}

LearnedFile LlmFuserWeights::ToFile(const LlmFuserTensors& t, double lora_alpha) {
  LearnedFile f;
  f.tensors["memory_embeddings"] = t.embeddings;
  for (size_t l = 0; l < t.lora_a.size(); ++l) {
    for (int i = 0; i < 3; ++i) {
      const std::string base = absl::StrCat("layers.", l, ".", kProj[i]);
      f.tensors[base + ".lora_a"] = t.lora_a[l][i];
      f.tensors[base + ".lora_b"] = t.lora_b[l][i];
    }
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", lora_alpha);
  f.metadata = {{"ctxmem.method", "llm_fuser"}, {"lora_alpha", buf}};
  return f;
}

absl::Status LlmFuserWeights::CheckFits(const model::Transformer& model) const {
  const model::ModelConfig& c = model.config();
  const int64_t outs[3] = {c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim,
                           c.n_kv_heads * c.head_dim};
  bool ok = n_layers() == c.n_layers && t_.embeddings.size(1) == c.hidden;
  for (int64_t l = 0; ok && l < n_layers(); ++l) {
    for (int i = 0; i < 3; ++i) ok = ok && t_.lora_b[l][i].size(0) == outs[i];
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": llm_fuser of ", n_layers(), " layers, hidden ",
                     t_.embeddings.size(1), "; the model has ", c.n_layers, " layers, hidden ",
                     c.hidden, ", q/k/v outputs ", outs[0], "/", outs[1], "/", outs[2]));
  }
  return absl::OkStatus();
}

absl::Status LlmFuser::NoWeightsError() {
  return absl::FailedPreconditionError(
      "llm_fuser needs trained weights (spec §7) and is never run with random ones: register a "
      "file with --learned NAME=FILE (ctxmem train --method llm_fuser writes one) and select "
      "NAME");
}

std::vector<compress::LayerMemory> LlmFuser::FuseLayers(const compress::FuseInput& in) const {
  TORCH_CHECK(in.model != nullptr, "llm_fuser runs the model: FuseInput::model is null");
  const absl::Status fits = weights_->CheckFits(*in.model);
  TORCH_CHECK(fits.ok(), std::string(fits.message()));
  std::vector<at::Tensor> k, v;
  for (size_t l = 0; l < in.candidates->size(); ++l) {
    const compress::LayerMemory& pre = (*in.prefix)[l];
    const compress::LayerMemory& c = (*in.candidates)[l];
    k.push_back(pre.len() > 0 ? at::cat({pre.k, c.k}, 1) : c.k);  // [h, P, d]
    v.push_back(pre.len() > 0 ? at::cat({pre.v, c.v}, 1) : c.v);
  }
  absl::StatusOr<std::vector<std::pair<at::Tensor, at::Tensor>>> fused =
      LlmFuseForward(*in.model, weights_->tensors(), k, v, in.target);
  TORCH_CHECK(fused.ok(), std::string(fused.status().message()));
  std::vector<compress::LayerMemory> out;
  for (size_t l = 0; l < in.candidates->size(); ++l) {
    const compress::LayerMemory& c = (*in.candidates)[l];
    out.push_back({(*fused)[l].first.to(c.k.scalar_type()),
                   (*fused)[l].second.to(c.v.scalar_type()),
                   compress::GroupAnchors(c.src, in.target),
                   at::zeros({c.k.size(0), in.target}, c.k.options().dtype(at::kFloat))});
  }
  return out;
}

}  // namespace ctxmem::learned
