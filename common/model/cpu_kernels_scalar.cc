// Portable reference implementation of the CPU kernel table (cpu_kernels.h). Also the ground
// truth the vector families are tested against.

#include <cmath>
#include <cstring>

#include "common/model/cpu_kernels.h"
#include "common/weights/float16.h"

namespace ctxmem::model {
namespace {

inline float H(uint16_t h) { return weights::HalfToFloat(h); }

// 4-bit value j (0..31) of block b of a q4 row (see KernelWeights for the pair layout).
inline int Nibble(const uint8_t* row, int64_t nb, int64_t b, int j) {
  if ((b & 1) == 0 && b + 1 < nb) return row[b * 16 + j] & 0x0F;  // low half of pair b/2
  if ((b & 1) == 1) return row[(b - 1) * 16 + j] >> 4;            // high half of pair b/2
  // odd last block, GGML order
  const uint8_t byte = row[b * 16 + (j & 15)];
  return j < 16 ? (byte & 0x0F) : (byte >> 4);
}

void QMatVec(const KernelWeights& w, const KernelActivations& x, float* y, int64_t ldy,
             int64_t r_begin, int64_t r_end) {
  const int64_t nb = w.cols / 32;
  for (int64_t r = r_begin; r < r_end; ++r) {
    const uint8_t* row = w.qs + r * w.row_bytes;
    const uint16_t* d = w.d + r * nb;
    for (int64_t i = 0; i < x.n; ++i) {
      const int8_t* xq = x.q + i * x.cols;
      const float* xd = x.d + i * nb;
      const float* xs = x.s + i * nb;
      float acc = 0;
      for (int64_t b = 0; b < nb; ++b) {
        int32_t dot = 0;
        if (w.type == kKernelQ8_0) {
          const int8_t* wq = reinterpret_cast<const int8_t*>(row) + b * 32;
          for (int j = 0; j < 32; ++j) dot += wq[j] * xq[b * 32 + j];
          acc += H(d[b]) * xd[b] * static_cast<float>(dot);
        } else {
          for (int j = 0; j < 32; ++j) dot += Nibble(row, nb, b, j) * xq[b * 32 + j];
          acc += H(d[b]) * xd[b] * static_cast<float>(dot);
          // q4_1: + m * d_x * sum(q_x); q4_0: values are nib - 8
          const float c = w.type == kKernelQ4_1 ? H(w.m[r * nb + b]) : -8.0f * H(d[b]);
          acc += c * xs[b];
        }
      }
      y[i * ldy + r] = acc;
    }
  }
}

void QuantizeRowQ8(const float* x, int64_t cols, int8_t* q, float* d, float* s) {
  for (int64_t b = 0; b < cols / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[b * 32 + j]));
    const float db = amax / 127.0f;
    const float id = db != 0 ? 1.0f / db : 0.0f;
    int32_t sum = 0;
    for (int j = 0; j < 32; ++j) {
      const int v = static_cast<int>(std::nearbyint(x[b * 32 + j] * id));
      q[b * 32 + j] = static_cast<int8_t>(v);
      sum += v;
    }
    d[b] = db;
    s[b] = db * static_cast<float>(sum);
  }
}

float Dot(const float* a, const float* b, int64_t n) {
  float acc = 0;
  for (int64_t k = 0; k < n; ++k) acc += a[k] * b[k];
  return acc;
}

void Axpy(float alpha, const float* x, float* y, int64_t n) {
  for (int64_t k = 0; k < n; ++k) y[k] += alpha * x[k];
}

const CpuKernelTable kTable = {"scalar", QMatVec, QuantizeRowQ8, Dot, Axpy};

}  // namespace

const CpuKernelTable* ScalarCpuKernels() { return &kTable; }

}  // namespace ctxmem::model
