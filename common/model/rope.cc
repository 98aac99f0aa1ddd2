#include "common/model/rope.h"

#include <ATen/ATen.h>

#include <cmath>
#include <vector>

namespace ctxmem::model {

Rope Rope::Create(const ModelConfig& c, c10::Device device) {
  const int64_t half = c.rope_dim / 2;
  std::vector<float> inv(half);
  for (int64_t i = 0; i < half; ++i) {
    // Computed in double then rounded, as HF does in float32 arange/pow; the difference is
    // below fp32 resolution for the theta values in use.
    double f = 1.0 / std::pow(c.rope_theta, static_cast<double>(2 * i) / c.rope_dim);
    switch (c.rope_scaling) {
      case RopeScaling::kNone:
        break;
      case RopeScaling::kLinear:
        f /= c.rope_factor;
        break;
      case RopeScaling::kLlama3: {
        // Llama 3.1: long wavelengths are scaled by `factor`, short ones kept, and a smooth
        // blend in between (transformers' _compute_llama3_parameters).
        const double low_wavelen = c.rope_original_max_positions / c.rope_low_freq_factor;
        const double high_wavelen = c.rope_original_max_positions / c.rope_high_freq_factor;
        const double wavelen = 2 * M_PI / f;
        if (wavelen > low_wavelen) {
          f /= c.rope_factor;
        } else if (wavelen >= high_wavelen) {
          const double smooth = (c.rope_original_max_positions / wavelen - c.rope_low_freq_factor) /
                                (c.rope_high_freq_factor - c.rope_low_freq_factor);
          f = (1 - smooth) * f / c.rope_factor + smooth * f;
        }
        break;
      }
    }
    inv[i] = static_cast<float>(f);
  }
  Rope r;
  r.rope_dim_ = c.rope_dim;
  r.inv_freq_ = at::tensor(inv, at::kFloat).to(device);  // [rope_dim / 2]
  return r;
}

at::Tensor Rope::Apply(const at::Tensor& x, const at::Tensor& positions) const {
  const int64_t half = rope_dim_ / 2;
  auto freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq_;  // [batch, n_tokens, half]
  auto emb = at::cat({freqs, freqs}, -1).unsqueeze(1);  // [batch, 1, n_tokens, rope_dim]
  auto cos = emb.cos().to(x.scalar_type());
  auto sin = emb.sin().to(x.scalar_type());
  const int64_t head_dim = x.size(-1);
  auto x_rot = rope_dim_ == head_dim ? x : x.narrow(-1, 0, rope_dim_);
  auto x1 = x_rot.narrow(-1, 0, half);
  auto x2 = x_rot.narrow(-1, half, half);
  auto rotated = at::cat({-x2, x1}, -1);   // rotate_half
  auto out = x_rot * cos + rotated * sin;  // [batch, n_heads, n_tokens, rope_dim]
  if (rope_dim_ == head_dim) return out;
  return at::cat({out, x.narrow(-1, rope_dim_, head_dim - rope_dim_)}, -1);
}

}  // namespace ctxmem::model
