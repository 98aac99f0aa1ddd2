// AVX-512 (F/BW/VL/DQ) + VNNI family of the CPU kernel table (cpu_kernels.h). Compiled with
// -mavx512* flags (CMakeLists.txt): only call through Avx512VnniCpuKernels() after
// ActiveCpuIsa() said so. No standard-library templates are used here (their instantiations are
// COMDAT symbols the linker could share with portable code).
//
// qmatvec: weight bytes are unsigned (q4 nibbles 0..15; q8 values xor 0x80 = q + 128), the
// activations signed int8, so vpdpbusd multiplies them directly; the offsets (q4_0's -8, q8's
// +128, q4_1's m) become one float correction per block, sum_b c_b * s_x[b] with s_x = d_x *
// sum(q_x). Two blocks (64 values) per 512-bit step; up to 4 activation rows share each
// weight load.

#include <immintrin.h>

#include <cstring>

#include "common/model/cpu_kernels.h"

namespace ctxmem::model {
namespace {

inline float HalfToFloat(uint16_t h) { return _cvtsh_ss(h); }

inline float HorizontalSum256i(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return static_cast<float>(_mm_cvtsi128_si32(s));
}

// Correction coefficient c_b per 16 blocks: q4_1 m, q4_0 -8 d, q8_0 -128 d (fp16 -> fp32).
template <int kType>
inline __m512 OffsetCoefficients(const uint16_t* d, const uint16_t* m, __mmask16 mask) {
  if (kType == kKernelQ4_1) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, m));
  const __m512 dv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, d));
  return _mm512_mul_ps(dv, _mm512_set1_ps(kType == kKernelQ4_0 ? -8.0f : -128.0f));
}

// Weight bytes of pair p as 64 unsigned values (block 2p in lanes 0..31, 2p+1 in 32..63).
template <int kType>
inline __m512i LoadPair(const uint8_t* row, int64_t p) {
  if (kType == kKernelQ8_0) {
    const __m512i raw = _mm512_loadu_si512(row + 64 * p);
    return _mm512_xor_si512(raw, _mm512_set1_epi8(static_cast<char>(0x80)));
  }
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 32 * p));
  const __m256i lo = _mm256_and_si256(raw, m4);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// The odd last block b as 32 unsigned values in order.
template <int kType>
inline __m256i LoadTail(const uint8_t* row, int64_t b) {
  if (kType == kKernelQ8_0) {
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 32 * b));
    return _mm256_xor_si256(raw, _mm256_set1_epi8(static_cast<char>(0x80)));
  }
  const __m128i m4 = _mm_set1_epi8(0x0F);
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 16 * b));
  const __m128i lo = _mm_and_si128(raw, m4);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), m4);
  return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
}

// out[i] = dot(W[r, :], x[i0 + i, :]) for i < kN.
template <int kType, int kN>
void RowDot(const KernelWeights& w, int64_t r, const KernelActivations& x, int64_t i0, float* y,
            int64_t ldy) {
  const int64_t nb = w.cols / 32;
  const int64_t np = nb / 2;
  const uint8_t* row = w.qs + r * w.row_bytes;
  const uint16_t* d = w.d + r * nb;
  const uint16_t* m = kType == kKernelQ4_1 ? w.m + r * nb : nullptr;
  // lanes 0..7 take scale 0, lanes 8..15 scale 1
  const __m512i pair_idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  __m512 acc[kN];
  for (int i = 0; i < kN; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t p = 0; p < np; ++p) {
    const __m512i wv = LoadPair<kType>(row, p);
    uint32_t d2;
    std::memcpy(&d2, d + 2 * p, sizeof(d2));
    const __m128 dw = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(d2)));  // [d0, d1, ., .]
    for (int i = 0; i < kN; ++i) {
      const int64_t xi = i0 + i;
      const __m512i a = _mm512_loadu_si512(x.q + xi * x.cols + 64 * p);
      const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv, a);
      const __m128 dx = _mm_castpd_ps(
          _mm_load_sd(reinterpret_cast<const double*>(x.d + xi * nb + 2 * p)));  // [dx0, dx1, 0, 0]
      const __m512 scale =
          _mm512_permutexvar_ps(pair_idx, _mm512_castps128_ps512(_mm_mul_ps(dw, dx)));
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[i]);
    }
  }
  float tail[kN];
  for (int i = 0; i < kN; ++i) tail[i] = 0;
  if (nb & 1) {
    const int64_t b = nb - 1;
    const __m256i wv = LoadTail<kType>(row, b);
    const float dw = HalfToFloat(d[b]);
    for (int i = 0; i < kN; ++i) {
      const int64_t xi = i0 + i;
      const __m256i a =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q + xi * x.cols + 32 * b));
      const __m256i dot = _mm256_dpbusd_epi32(_mm256_setzero_si256(), wv, a);
      tail[i] = dw * x.d[xi * nb + b] * HorizontalSum256i(dot);
    }
  }
  // Offsets: sum_b c_b * s_x[b], 16 blocks at a time.
  for (int64_t b = 0; b < nb; b += 16) {
    const int64_t left = nb - b;
    const __mmask16 mask =
        left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
    const __m512 c = OffsetCoefficients<kType>(d + b, m != nullptr ? m + b : nullptr, mask);
    for (int i = 0; i < kN; ++i) {
      const __m512 s = _mm512_maskz_loadu_ps(mask, x.s + (i0 + i) * nb + b);
      acc[i] = _mm512_fmadd_ps(c, s, acc[i]);
    }
  }
  for (int i = 0; i < kN; ++i) y[(i0 + i) * ldy + r] = _mm512_reduce_add_ps(acc[i]) + tail[i];
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
  const __m512 sign_off = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FFFFFFF));
  for (int64_t b = 0; b < cols / 32; ++b) {
    const __m512 v0 = _mm512_loadu_ps(x + 32 * b);
    const __m512 v1 = _mm512_loadu_ps(x + 32 * b + 16);
    const __m512 a = _mm512_max_ps(_mm512_and_ps(v0, sign_off), _mm512_and_ps(v1, sign_off));
    const float amax = _mm512_reduce_max_ps(a);
    const float db = amax / 127.0f;
    const float id = db != 0 ? 1.0f / db : 0.0f;
    const __m512 idv = _mm512_set1_ps(id);
    // cvtps_epi32 rounds half to even under the default MXCSR, as the scalar nearbyint does.
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, idv));
    const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, idv));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 32 * b), _mm512_cvtsepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 32 * b + 16), _mm512_cvtsepi32_epi8(q1));
    d[b] = db;
    s[b] = db * static_cast<float>(_mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1)));
  }
}

float Dot(const float* a, const float* b, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + k), _mm512_loadu_ps(b + k), acc);
  }
  if (k < n) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (n - k)) - 1);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, a + k), _mm512_maskz_loadu_ps(mask, b + k),
                          acc);
  }
  return _mm512_reduce_add_ps(acc);
}

void Axpy(float alpha, const float* x, float* y, int64_t n) {
  const __m512 av = _mm512_set1_ps(alpha);
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    _mm512_storeu_ps(y + k, _mm512_fmadd_ps(av, _mm512_loadu_ps(x + k), _mm512_loadu_ps(y + k)));
  }
  if (k < n) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (n - k)) - 1);
    _mm512_mask_storeu_ps(y + k, mask,
                          _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(mask, x + k),
                                          _mm512_maskz_loadu_ps(mask, y + k)));
  }
}

const CpuKernelTable kTable = {"avx512_vnni", QMatVec, QuantizeRowQ8, Dot, Axpy};

}  // namespace

const CpuKernelTable* Avx512VnniCpuKernels() { return &kTable; }

}  // namespace ctxmem::model
