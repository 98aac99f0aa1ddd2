#pragma once
// Per-row fp32 pieces of a llama-family decode step shared by FastDecoder and BatchedDecoder
// (inline: they run a few times per layer and token, on rows of `hidden` or `head_dim` floats).
// They compute what Transformer::Forward's fp32 path computes: HF LlamaRMSNorm and HF's
// rotate_half RoPE.

#include <cmath>
#include <cstdint>

namespace ctxmem::model {

// y[n] = w * x / rms(x), the mean of squares accumulated in fp32.
inline void RmsNormRow(const float* x, const float* w, int64_t n, double eps, float* y) {
  float ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const float r = 1.0f / std::sqrt(ss / static_cast<float>(n) + static_cast<float>(eps));
  for (int64_t i = 0; i < n; ++i) y[i] = w[i] * (x[i] * r);
}

// Rotates, in place, the first rope_dim dims of each of the `n_heads` heads of x
// [n_heads, head_dim], with cos / sin [rope_dim / 2] of the row's position (rotate_half: dim i
// pairs with dim i + rope_dim / 2).
inline void RotateRow(float* x, int64_t n_heads, int64_t head_dim, int64_t rope_dim,
                      const float* cos, const float* sin) {
  const int64_t half = rope_dim / 2;
  for (int64_t hd = 0; hd < n_heads; ++hd) {
    float* v = x + hd * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float a = v[i], b = v[i + half];
      v[i] = a * cos[i] - b * sin[i];
      v[i + half] = b * cos[i] + a * sin[i];
    }
  }
}

}  // namespace ctxmem::model
