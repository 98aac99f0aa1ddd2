#include "common/learned/perceiver_weights.h"

#include <ATen/ops/empty.h>

#include <cmath>
#include <map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/learned/learned_file.h"
#include "common/status.h"
#include "common/weights/safetensors_file.h"

namespace ctxmem::learned {

absl::StatusOr<PerceiverWeights> PerceiverWeights::Create(std::vector<PerceiverLayerWeights> layers,
                                                          double temperature,
                                                          const std::string& source) {
  auto bad = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", parts...));
  };
  if (layers.empty()) return bad("no perceiver layers (expected layers.0.query, ...)");
  if (!(temperature > 0) || !std::isfinite(temperature)) {
    return bad("temperature=", temperature, " must be a finite number > 0");
  }
  PerceiverWeights w;
  w.source_ = source;
  w.temperature_ = temperature;
  const PerceiverLayerWeights& first = layers.front();
  if (!first.query.defined() || first.query.dim() != 2 || first.query.size(0) < 1 ||
      first.query.size(1) < 1) {
    return bad("layers.0.query is ", LearnedFile::ShapeString(first.query),
               ", expected [query_len, d_query]");
  }
  w.query_len_ = first.query.size(0);
  w.d_query_ = first.query.size(1);
  if (!first.wk.defined() || first.wk.dim() != 2 || first.wk.size(1) < 1) {
    return bad("layers.0.wk.weight is ", LearnedFile::ShapeString(first.wk),
               ", expected [d_query=", w.d_query_, ", d_model]");
  }
  w.d_model_ = first.wk.size(1);
  for (size_t l = 0; l < layers.size(); ++l) {
    PerceiverLayerWeights& lw = layers[l];
    auto check = [&](const at::Tensor& t, const char* name, int64_t rows,
                     int64_t cols) -> absl::Status {
      if (!t.defined() || t.dim() != 2 || t.size(0) != rows || t.size(1) != cols) {
        return bad("layers.", l, ".", name, " is ", LearnedFile::ShapeString(t), ", expected [",
                   rows, ", ", cols, "] (query_len=", w.query_len_, ", d_query=", w.d_query_,
                   ", d_model=", w.d_model_, " from layer 0)");
      }
      if (!t.is_floating_point()) return bad("layers.", l, ".", name, " is not a float tensor");
      return absl::OkStatus();
    };
    CTXMEM_RETURN_IF_ERROR(check(lw.query, "query", w.query_len_, w.d_query_));
    CTXMEM_RETURN_IF_ERROR(check(lw.wq, "wq.weight", w.d_query_, w.d_query_));
    CTXMEM_RETURN_IF_ERROR(check(lw.wk, "wk.weight", w.d_query_, w.d_model_));
    for (at::Tensor* t : {&lw.query, &lw.wq, &lw.wk}) {
      *t = t->to(at::kCPU).to(at::kFloat).contiguous();
      if (!t->isfinite().all().item<bool>()) {
        return bad("layers.", l, " holds a NaN or infinite weight");
      }
    }
  }
  w.layers_ = std::move(layers);
  return w;
}

absl::StatusOr<PerceiverWeights> PerceiverWeights::Load(const std::string& path) {
  CTXMEM_ASSIGN_OR_RETURN(std::unique_ptr<weights::SafetensorsFile> file,
                          weights::SafetensorsFile::Open(path));
  auto bad = [&](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", parts...));
  };
  std::map<int64_t, PerceiverLayerWeights> by_layer;
  for (const weights::StTensorInfo& info : file->tensors()) {
    int64_t layer = 0;
    std::string part;
    if (!LearnedFile::SplitLayerName(info.name, "layers.", &layer, &part) ||
        (part != "query" && part != "wq.weight" && part != "wk.weight")) {
      return bad("unexpected tensor '", info.name,
                 "'; a perceiver file holds only layers.<l>.query, layers.<l>.wq.weight and "
                 "layers.<l>.wk.weight");
    }
    if (info.dtype != weights::StDtype::kF32 && info.dtype != weights::StDtype::kF16 &&
        info.dtype != weights::StDtype::kBF16 && info.dtype != weights::StDtype::kF64) {
      return bad("tensor '", info.name, "' has dtype ",
                 std::string(weights::StDtypeName(info.dtype)), "; expected F32, F16, BF16 or F64");
    }
    at::Tensor t = at::empty(std::vector<int64_t>(info.shape.begin(), info.shape.end()),
                             at::kFloat);  // shape from the header, fp32
    CTXMEM_RETURN_IF_ERROR(file->ReadF32(info, t.data_ptr<float>()));
    PerceiverLayerWeights& lw = by_layer[layer];
    (part == "query" ? lw.query : part == "wq.weight" ? lw.wq : lw.wk) = t;
  }
  std::vector<PerceiverLayerWeights> layers;
  for (const auto& [l, lw] : by_layer) {
    if (l != static_cast<int64_t>(layers.size())) {
      return bad("layer numbers must run 0..n-1; layer ", layers.size(), " is missing");
    }
    for (const auto& [t, name] : {std::pair{&lw.query, "query"}, std::pair{&lw.wq, "wq.weight"},
                                  std::pair{&lw.wk, "wk.weight"}}) {
      if (!t->defined()) return bad("tensor layers.", l, ".", name, " is missing");
    }
    layers.push_back(lw);
  }
  double temperature = 1.0;
  if (auto it = file->metadata().find("temperature"); it != file->metadata().end()) {
    if (!absl::SimpleAtod(it->second, &temperature)) {
      return bad("metadata temperature='", it->second, "' is not a number");
    }
  }
  return Create(std::move(layers), temperature, path);
}

absl::Status PerceiverWeights::CheckFits(int64_t n_layers, int64_t n_kv_heads,
                                         int64_t head_dim) const {
  if (n_layers != this->n_layers()) {
    return absl::InvalidArgumentError(absl::StrCat(source_, " has ", this->n_layers(),
                                                   " perceiver layers, the model has ", n_layers));
  }
  if (n_kv_heads * head_dim != d_model_) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": wk takes d_model=", d_model_, " inputs, the model's keys are ",
                     n_kv_heads, " kv heads x ", head_dim, " = ", n_kv_heads * head_dim));
  }
  if (n_kv_heads < 1 || d_query_ % n_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": d_query=", d_query_,
                                                   " is not divisible by n_kv_heads=", n_kv_heads));
  }
  return absl::OkStatus();
}

}  // namespace ctxmem::learned
