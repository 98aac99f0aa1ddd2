#pragma once
// Rotary position embedding, HF style (rotate_half over the first `rope_dim` dims of a head),
// with linear and llama3 frequency scaling. Thread-safety: immutable after Create().

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "common/model/model_config.h"

namespace ctxmem::model {

class Rope {
 public:
  Rope() = default;
  // Builds the inverse frequencies for `config` on `device` (fp32).
  static Rope Create(const ModelConfig& config, c10::Device device);

  // Rotates `x` [batch, n_heads, n_tokens, head_dim] to `positions` [batch, n_tokens] (int64).
  // Works for any positions, so keys stored before RoPE can be placed anywhere later.
  at::Tensor Apply(const at::Tensor& x, const at::Tensor& positions) const;

  const at::Tensor& inv_freq() const { return inv_freq_; }  // [rope_dim / 2], fp32

 private:
  at::Tensor inv_freq_;
  int64_t rope_dim_ = 0;
};

}  // namespace ctxmem::model
