// AVX2 + FMA + F16C family of the CPU kernel table (cpu_kernels.h). Compiled with -mavx2 -mfma
// -mf16c (CMakeLists.txt): only call through Avx2CpuKernels() after ActiveCpuIsa() said so. No
// standard-library templates are used here (see cpu_kernels_avx512.cc).
//
// qmatvec: one 32-value block per 256-bit step. q4 nibbles (unsigned) times int8 activations
// with vpmaddubsw (pairs of products fit int16: 15 * 127 * 2); q8 weights through the sign
// trick, |w| * sign(x, w) (128 * 127 * 2 < 32768), then vpmaddwd to int32 and one fp32 FMA per
// block with d_w * d_x.

#include <immintrin.h>

#include "common/model/cpu_kernels.h"

namespace ctxmem::model {
namespace {

inline float HalfToFloat(uint16_t h) { return _cvtsh_ss(h); }

inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// int32 lanes of dot(u8 w, s8 a) over 32 values.
inline __m256i DotU8S8(__m256i w, __m256i a) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1));
}

template <int kType, int kN>
void RowDot(const KernelWeights& w, int64_t r, const KernelActivations& x, int64_t i0, float* y,
            int64_t ldy) {
  const int64_t nb = w.cols / 32;
  const uint8_t* row = w.qs + r * w.row_bytes;
  const uint16_t* d = w.d + r * nb;
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256 acc[kN];
  float offset[kN];
  for (int i = 0; i < kN; ++i) {
    acc[i] = _mm256_setzero_ps();
    offset[i] = 0;
  }
  for (int64_t b = 0; b < nb; ++b) {
    __m256i wv;
    if (kType == kKernelQ8_0) {
      wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 32 * b));
    } else if ((b & 1) == 0 && b + 1 < nb) {
      wv = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 16 * b)), m4);
    } else if (b & 1) {
      wv = _mm256_and_si256(
          _mm256_srli_epi16(
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 16 * (b - 1))), 4),
          m4);
    } else {  // odd last block, GGML order
      const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 16 * b));
      const __m128i lo = _mm_and_si128(raw, _mm_set1_epi8(0x0F));
      const __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0F));
      wv = _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
    }
    const float dw = HalfToFloat(d[b]);
    const float c = kType == kKernelQ4_1   ? HalfToFloat(w.m[r * nb + b])
                    : kType == kKernelQ4_0 ? -8.0f * dw
                                           : 0.0f;
    const __m256i w_abs = kType == kKernelQ8_0 ? _mm256_sign_epi8(wv, wv) : wv;
    for (int i = 0; i < kN; ++i) {
      const int64_t xi = i0 + i;
      __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q + xi * x.cols + 32 * b));
      if (kType == kKernelQ8_0) a = _mm256_sign_epi8(a, wv);
      const __m256i dot = DotU8S8(w_abs, a);
      acc[i] =
          _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(dw * x.d[xi * nb + b]), acc[i]);
      if (kType != kKernelQ8_0) offset[i] += c * x.s[xi * nb + b];
    }
  }
  for (int i = 0; i < kN; ++i) y[(i0 + i) * ldy + r] = HorizontalSum(acc[i]) + offset[i];
}

template <int kType>
void QMatVecTyped(const KernelWeights& w, const KernelActivations& x, float* y, int64_t ldy,
                  int64_t r_begin, int64_t r_end) {
  for (int64_t r = r_begin; r < r_end; ++r) {
    int64_t i = 0;
    for (; i + 4 <= x.n; i += 4) RowDot<kType, 4>(w, r, x, i, y, ldy);
    switch (x.n - i) {
      case 3:
        RowDot<kType, 3>(w, r, x, i, y, ldy);
        break;
      case 2:
        RowDot<kType, 2>(w, r, x, i, y, ldy);
        break;
      case 1:
        RowDot<kType, 1>(w, r, x, i, y, ldy);
        break;
      default:
        break;
    }
  }
}

void QMatVec(const KernelWeights& w, const KernelActivations& x, float* y, int64_t ldy,
             int64_t r_begin, int64_t r_end) {
  switch (w.type) {
    case kKernelQ4_0:
      QMatVecTyped<kKernelQ4_0>(w, x, y, ldy, r_begin, r_end);
      break;
    case kKernelQ4_1:
      QMatVecTyped<kKernelQ4_1>(w, x, y, ldy, r_begin, r_end);
      break;
    case kKernelQ8_0:
      QMatVecTyped<kKernelQ8_0>(w, x, y, ldy, r_begin, r_end);
      break;
    default:
      break;
  }
}

void QuantizeRowQ8(const float* x, int64_t cols, int8_t* q, float* d, float* s) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  for (int64_t b = 0; b < cols / 32; ++b) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(x + 32 * b + 8 * k);
      amax = _mm256_max_ps(amax, _mm256_and_ps(v[k], abs_mask));
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float db = _mm_cvtss_f32(m) / 127.0f;
    const float id = db != 0 ? 1.0f / db : 0.0f;
    const __m256 idv = _mm256_set1_ps(id);
    __m256i qi[4];
    __m256i sum = _mm256_setzero_si256();
    for (int k = 0; k < 4; ++k) {
      qi[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], idv));  // round half to even
      sum = _mm256_add_epi32(sum, qi[k]);
    }
    // int32 -> int8 keeping order: packs interleave 128-bit lanes, the permute undoes it.
    const __m256i p01 = _mm256_packs_epi32(qi[0], qi[1]);
    const __m256i p23 = _mm256_packs_epi32(qi[2], qi[3]);
    __m256i p = _mm256_packs_epi16(p01, p23);
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + 32 * b), p);
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    d[b] = db;
    s[b] = db * static_cast<float>(_mm_cvtsi128_si32(s4));
  }
}

float Dot(const float* a, const float* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), acc);
  }
  float out = HorizontalSum(acc);
  for (; k < n; ++k) out += a[k] * b[k];
  return out;
}

void Axpy(float alpha, const float* x, float* y, int64_t n) {
  const __m256 av = _mm256_set1_ps(alpha);
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    _mm256_storeu_ps(y + k, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + k), _mm256_loadu_ps(y + k)));
  }
  for (; k < n; ++k) y[k] += alpha * x[k];
}

const CpuKernelTable kTable = {"avx2", QMatVec, QuantizeRowQ8, Dot, Axpy};

}  // namespace

const CpuKernelTable* Avx2CpuKernels() { return &kTable; }

}  // namespace ctxmem::model
