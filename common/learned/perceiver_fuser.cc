#include "common/learned/perceiver_fuser.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/compress/top_k.h"
#include "common/learned/perceiver_pruner.h"
#include "common/status.h"

namespace ctxmem::learned {
namespace {

constexpr double kNormEps = 1e-5;

// The file's tensor names per layer, in PerceiverFuserLayer order.
struct Part {
  const char* name;
  at::Tensor PerceiverFuserLayer::*member;
};
constexpr Part kParts[] = {
    {"query", &PerceiverFuserLayer::query},          {"wq.weight", &PerceiverFuserLayer::wq},
    {"wk.weight", &PerceiverFuserLayer::wk},         {"bilinear", &PerceiverFuserLayer::bilinear},
    {"norm1.weight", &PerceiverFuserLayer::norm1_w}, {"norm1.bias", &PerceiverFuserLayer::norm1_b},
    {"ffn1.weight", &PerceiverFuserLayer::ffn1_w},   {"ffn1.bias", &PerceiverFuserLayer::ffn1_b},
    {"ffn2.weight", &PerceiverFuserLayer::ffn2_w},   {"ffn2.bias", &PerceiverFuserLayer::ffn2_b},
    {"norm2.weight", &PerceiverFuserLayer::norm2_w}, {"norm2.bias", &PerceiverFuserLayer::norm2_b},
};

std::vector<int64_t> PartShape(const std::string& part, const PerceiverFuserShape& s) {
  if (part == "query") return {s.query_len, s.d_query};
  if (part == "wq.weight") return {s.d_query, s.d_query};
  if (part == "wk.weight") return {s.d_query, s.d_model};
  if (part == "bilinear") return {s.head_dim, s.head_dim};
  if (part == "ffn1.weight") return {s.d_query, s.head_dim};
  if (part == "ffn1.bias") return {s.d_query};
  if (part == "ffn2.weight") return {s.head_dim, s.d_query};
  return {s.head_dim};  // norms, ffn2.bias
}

// Step 3 of the header on [.., head_dim].
at::Tensor PostProcess(const PerceiverFuserLayer& w, bool seed_norm, const at::Tensor& x) {
  const int64_t d = x.size(-1);
  auto ffn = [&](const at::Tensor& y) {
    return at::linear(at::relu(at::linear(y, w.ffn1_w, w.ffn1_b)), w.ffn2_w, w.ffn2_b);
  };
  at::Tensor y = at::layer_norm(x, {d}, w.norm1_w, w.norm1_b, kNormEps);
  if (seed_norm) return at::layer_norm(y + ffn(y), {d}, w.norm2_w, w.norm2_b, kNormEps);
  return x + ffn(y);
}

}  // namespace

FusedLayer PerceiverFuseLayer(const PerceiverFuserLayer& w, const PerceiverFuserShape& s,
                              const at::Tensor& keys, const at::Tensor& values, int64_t target,
                              bool straight_through) {
  const int64_t h = keys.size(0), d = keys.size(2);
  const int64_t n_q = std::max<int64_t>(1, std::min(s.query_len, target));
  at::Tensor p = PerceiverAttention(w.query, w.wq, w.wk, keys, n_q, s.temperature);  // [h, n_q, n]
  at::Tensor rank = PerceiverRoutedRank(PerceiverRouting::kPositional, p.detach(), target);
  FusedLayer out;
  out.anchors = compress::TopKIndices(rank, target);  // [h, T] ascending
  const int64_t t = out.anchors.size(1), kf = s.fuse_k;
  // The anchor and its predecessors, oldest first: [h, T, fuse_k] candidate indices.
  at::Tensor back = at::arange(kf - 1, -1, -1, out.anchors.options());  // [fuse_k]
  at::Tensor idx = (out.anchors.unsqueeze(-1) - back).clamp_min(0);     // [h, T, fuse_k]
  at::Tensor flat = idx.reshape({h, t * kf}).unsqueeze(-1).expand({h, t * kf, d});
  at::Tensor kg = keys.to(at::kFloat).gather(1, flat).view({h, t, kf, d});  // [h, T, fuse_k, d]
  at::Tensor vg = values.to(at::kFloat).gather(1, flat).view({h, t, kf, d});
  at::Tensor ka = kg.select(2, kf - 1);                                        // [h, T, d]
  at::Tensor logits = (at::matmul(ka, w.bilinear).unsqueeze(2) * kg).sum(-1);  // [h, T, fuse_k]
  at::Tensor a = at::softmax(logits, -1).unsqueeze(-1);                        // [h, T, fuse_k, 1]
  out.k = PostProcess(w, s.seed_norm, (a * kg).sum(2));                        // [h, T, d]
  out.v = PostProcess(w, s.seed_norm, (a * vg).sum(2));
  if (straight_through) {
    at::Tensor pa = p.mean(1).gather(1, out.anchors);       // [h, T]
    at::Tensor f = (1.0 + pa - pa.detach()).unsqueeze(-1);  // value 1
    out.k = out.k * f;
    out.v = out.v * f;
  }
  return out;
}

absl::StatusOr<PerceiverFuserWeights> PerceiverFuserWeights::FromFile(const LearnedFile& file,
                                                                      const std::string& source) {
  auto bad = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", parts...));
  };
  if (auto it = file.metadata.find("ctxmem.method");
      it == file.metadata.end() || it->second != "perceiver_fuser") {
    return bad("not a perceiver_fuser file (metadata ctxmem.method)");
  }
  int64_t n_layers = 0;
  while (file.tensors.count(absl::StrCat("layers.", n_layers, ".query")) > 0) ++n_layers;
  if (n_layers == 0) return bad("no layers.0.query");
  if (file.tensors.size() != static_cast<size_t>(n_layers) * std::size(kParts)) {
    return bad(file.tensors.size(), " tensors; ", n_layers, " layers of ", std::size(kParts),
               " named parts expected (unknown or missing tensors)");
  }
  PerceiverFuserShape s;
  s.n_layers = n_layers;
  const at::Tensor& q0 = file.tensors.at("layers.0.query");
  auto wk0 = file.tensors.find("layers.0.wk.weight");
  auto bl0 = file.tensors.find("layers.0.bilinear");
  if (q0.dim() != 2 || wk0 == file.tensors.end() || wk0->second.dim() != 2 ||
      bl0 == file.tensors.end() || bl0->second.dim() != 2) {
    return bad("layers.0.query, wk.weight and bilinear must be matrices");
  }
  s.query_len = q0.size(0);
  s.d_query = q0.size(1);
  s.d_model = wk0->second.size(1);
  s.head_dim = bl0->second.size(0);
  CTXMEM_ASSIGN_OR_RETURN(s.temperature, file.Number(source, "temperature", 1.0));
  CTXMEM_ASSIGN_OR_RETURN(double fuse_k, file.Number(source, "fuse_k", 4));
  s.fuse_k = static_cast<int64_t>(fuse_k);
  if (!(s.temperature > 0) || s.fuse_k < 1 || s.fuse_k > 64 || fuse_k != s.fuse_k) {
    return bad("temperature=", s.temperature, " must be > 0 and fuse_k=", fuse_k,
               " an integer in [1, 64]");
  }
  auto norm = file.metadata.find("norm");
  const std::string norm_name = norm == file.metadata.end() ? "pre" : norm->second;
  if (norm_name != "pre" && norm_name != "seed") return bad("norm='", norm_name, "': pre | seed");
  s.seed_norm = norm_name == "seed";
  PerceiverFuserWeights w;
  w.shape_ = s;
  w.source_ = source;
  for (int64_t l = 0; l < n_layers; ++l) {
    PerceiverFuserLayer layer;
    for (const Part& part : kParts) {
      CTXMEM_ASSIGN_OR_RETURN(
          layer.*part.member,
          file.Get(source, absl::StrCat("layers.", l, ".", part.name), PartShape(part.name, s)));
    }
    w.layers_.push_back(std::move(layer));
  }
  return w;
}

absl::StatusOr<PerceiverFuserWeights> PerceiverFuserWeights::Load(const std::string& path) {
  CTXMEM_ASSIGN_OR_RETURN(LearnedFile file, LearnedFile::Load(path));
  return FromFile(file, path);
}

LearnedFile PerceiverFuserWeights::ToFile(const std::vector<PerceiverFuserLayer>& layers,
                                          const PerceiverFuserShape& shape) {
  LearnedFile f;
  for (size_t l = 0; l < layers.size(); ++l) {
    for (const Part& part : kParts) {
      f.tensors[absl::StrCat("layers.", l, ".", part.name)] = layers[l].*part.member;
    }
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", shape.temperature);  // round-trips exactly
  f.metadata = {{"ctxmem.method", "perceiver_fuser"},
                {"temperature", buf},
                {"fuse_k", absl::StrCat(shape.fuse_k)},
                {"norm", shape.seed_norm ? "seed" : "pre"}};
  return f;
}

absl::Status PerceiverFuserWeights::CheckFits(int64_t n_layers, int64_t n_kv_heads,
                                              int64_t head_dim) const {
  if (n_layers != shape_.n_layers || n_kv_heads * head_dim != shape_.d_model ||
      head_dim != shape_.head_dim || n_kv_heads < 1 || shape_.d_query % n_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_, ": perceiver_fuser of ", shape_.n_layers, " layers, d_model=", shape_.d_model,
        ", head_dim=", shape_.head_dim, ", d_query=", shape_.d_query, "; the model has ", n_layers,
        " layers of ", n_kv_heads, " kv heads x ", head_dim,
        " (d_query must be divisible by the kv heads)"));
  }
  return absl::OkStatus();
}

absl::Status PerceiverFuser::NoWeightsError() {
  return absl::FailedPreconditionError(
      "perceiver_fuser needs trained weights (spec §7) and is never run with random ones: "
      "register a file with --learned NAME=FILE (ctxmem train --method perceiver_fuser writes "
      "one) and select NAME");
}

std::vector<compress::LayerMemory> PerceiverFuser::FuseLayers(const compress::FuseInput& in) const {
  const PerceiverFuserWeights& w = *weights_;
  const int64_t n_layers = static_cast<int64_t>(in.candidates->size());
  const at::Tensor& k0 = in.candidates->front().k;
  const absl::Status fits = w.CheckFits(n_layers, k0.size(0), k0.size(2));
  TORCH_CHECK(fits.ok(), std::string(fits.message()));
  std::vector<compress::LayerMemory> out;
  for (int64_t l = 0; l < n_layers; ++l) {
    const compress::LayerMemory& c = (*in.candidates)[l];
    FusedLayer f = PerceiverFuseLayer(w.layer(l), w.shape(), c.k, c.v, in.target,
                                      /*straight_through=*/false);
    out.push_back({f.k.to(c.k.scalar_type()), f.v.to(c.v.scalar_type()), c.src.gather(1, f.anchors),
                   at::zeros({c.k.size(0), in.target}, c.k.options().dtype(at::kFloat))});
  }
  return out;
}

}  // namespace ctxmem::learned
