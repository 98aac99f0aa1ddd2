#pragma once
// PerceiverWeights: the trained parameters of the perceiver pruner (spec §3.9), one
// PerceiverPrunerLayer per LLM layer, loaded from a safetensors file.
//
// File format (ctxmem's; the seed saved a PyTorch state dict whose key names are not recorded
// in the spec): for every layer l = 0..n_layers-1, fp32/fp16/bf16 tensors
//   layers.<l>.query      [query_len, d_query]  the learned queries Q
//   layers.<l>.wq.weight  [d_query, d_query]    Wq as nn.Linear stores it ([out, in], no bias)
//   layers.<l>.wk.weight  [d_query, d_model]    Wk ([out, in]); d_model = n_kv_heads * head_dim
// and optionally __metadata__ {"temperature": "<float > 0>"} (default 1.0). Every layer must
// have the same shapes; layer numbers must run 0..n-1 without gaps; unknown tensors are errors
// (so a misspelt name never silently falls back to something else).
// Thread-safety: immutable after Load()/Create(); share it freely (const).

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ctxmem::learned {

struct PerceiverLayerWeights {
  at::Tensor query;  // [query_len, d_query] fp32, CPU
  at::Tensor wq;     // [d_query, d_query] fp32, CPU ([out, in])
  at::Tensor wk;     // [d_query, d_model] fp32, CPU ([out, in])
};

class PerceiverWeights {
 public:
  // Reads `path` (a .safetensors file). NotFound for a missing file; InvalidArgument naming the
  // file and the tensor for anything malformed (bad names, gaps, shapes that disagree, a
  // non-float dtype, a bad temperature).
  static absl::StatusOr<PerceiverWeights> Load(const std::string& path);
  // From tensors in memory (tests, training code); same checks as Load(). `source` names them
  // in errors.
  static absl::StatusOr<PerceiverWeights> Create(std::vector<PerceiverLayerWeights> layers,
                                                 double temperature,
                                                 const std::string& source = "perceiver weights");

  int64_t n_layers() const { return static_cast<int64_t>(layers_.size()); }
  int64_t query_len() const { return query_len_; }
  int64_t d_query() const { return d_query_; }
  int64_t d_model() const { return d_model_; }
  double temperature() const { return temperature_; }
  const std::string& source() const { return source_; }
  const PerceiverLayerWeights& layer(int64_t l) const { return layers_[l]; }

  // OK when these weights fit a model with n_layers layers of n_kv_heads x head_dim keys
  // (d_model = n_kv_heads * head_dim, d_query divisible by n_kv_heads); otherwise
  // InvalidArgument saying which numbers disagree.
  absl::Status CheckFits(int64_t n_layers, int64_t n_kv_heads, int64_t head_dim) const;

 private:
  std::vector<PerceiverLayerWeights> layers_;
  int64_t query_len_ = 0;
  int64_t d_query_ = 0;
  int64_t d_model_ = 0;
  double temperature_ = 1.0;
  std::string source_;
};

}  // namespace ctxmem::learned
