// Portable reference implementation of the CPU kernel table (cpu_kernels.h). Also the ground
// truth the vector families are tested against.

#include <cmath>
#include <cstring>

#include "common/model/cpu_kernels.h"
#include "common/weights/float16.h"

namespace ctxmem::model {
namespace {

inline float H(uint16_t h) { return weights::HalfToFloat(h); }

// Quantized code of value w (0..31) of lane (row) j of a tile (cpu_kernels.h): a q4 nibble
// or a q8 int8 value's byte.
inline int TileCode(const uint8_t* tile, int32_t type, int j, int w) {
  const int k = w / 4, lane_byte = 4 * j + w % 4;
  if (type == kKernelQ8_0) return static_cast<int8_t>(tile[64 * k + lane_byte]);
  const uint8_t byte = tile[64 * (k / 2) + lane_byte];
  return (k & 1) != 0 ? byte >> 4 : byte & 0x0F;
}

void QMatVec(const KernelWeights& w, const KernelActivations& x, float* y, int64_t ldy,
             int64_t r_begin, int64_t r_end) {
  const int64_t nb = w.cols / 32, tile_bytes = KernelTileBytes(w.type);
  for (int64_t r = r_begin; r < r_end; ++r) {
    const int64_t g = r / kRowGroup;
    const int j = static_cast<int>(r % kRowGroup);
    for (int64_t i = 0; i < x.n; ++i) {
      const int8_t* xq = x.q + i * x.cols;
      const float* xd = x.d + i * nb;
      const float* xs = x.s + i * nb;
      float acc = 0;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* tile = w.qs + (g * nb + b) * tile_bytes;
        const int64_t si = (g * nb + b) * kRowGroup + j;
        int32_t dot = 0;
        for (int v = 0; v < 32; ++v) dot += TileCode(tile, w.type, j, v) * xq[b * 32 + v];
        acc += H(w.d[si]) * xd[b] * static_cast<float>(dot);
        if (w.type != kKernelQ8_0) {
          // q4_1: + m * d_x * sum(q_x); q4_0: values are nib - 8
          const float c = w.type == kKernelQ4_1 ? H(w.m[si]) : -8.0f * H(w.d[si]);
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

void Attend(const float* q, int64_t n_q, int64_t hd, float scale, const KernelKvSegment* segs,
            int n_segs, float* scores, float* out) {
  AttendByRows(Dot, Axpy, q, n_q, hd, scale, segs, n_segs, scores, out);
}

const CpuKernelTable kTable = {"scalar", QMatVec, QuantizeRowQ8,  Dot,
                               Axpy,     Attend,  PortableSiluMul};

}  // namespace

void AttendByRows(float (*dot)(const float*, const float*, int64_t),
                  void (*axpy)(float, const float*, float*, int64_t), const float* q, int64_t n_q,
                  int64_t hd, float scale, const KernelKvSegment* segs, int n_segs, float* scores,
                  float* out) {
  int64_t total = 0;
  for (int s = 0; s < n_segs; ++s) total += segs[s].n;
  for (int64_t i = 0; i < n_q; ++i) {
    const float* qi = q + i * hd;
    float* si = scores + i * total;
    float mx = -INFINITY;
    int64_t j = 0;
    for (int s = 0; s < n_segs; ++s) {
      for (int64_t e = 0; e < segs[s].n; ++e, ++j) {
        si[j] = dot(qi, segs[s].k + e * hd, hd) * scale;
        mx = std::fmax(mx, si[j]);
      }
    }
    float sum = 0;
    for (j = 0; j < total; ++j) {
      si[j] = std::exp(si[j] - mx);
      sum += si[j];
    }
    float* oi = out + i * hd;
    for (int64_t k = 0; k < hd; ++k) oi[k] = 0;
    const float inv = 1.0f / sum;
    j = 0;
    for (int s = 0; s < n_segs; ++s) {
      for (int64_t e = 0; e < segs[s].n; ++e, ++j) axpy(si[j] * inv, segs[s].v + e * hd, oi, hd);
    }
  }
}

void PortableSiluMul(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t k = 0; k < n; ++k) out[k] = gate[k] / (1.0f + std::exp(-gate[k])) * up[k];
}

const CpuKernelTable* ScalarCpuKernels() { return &kTable; }

}  // namespace ctxmem::model
