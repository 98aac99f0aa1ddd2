// AVX-512 (F/BW/VL/DQ) + VNNI family of the CPU kernel table (cpu_kernels.h). Compiled with
// -mavx512* flags (CMakeLists.txt): only call through Avx512VnniCpuKernels() after
// ActiveCpuIsa() said so. No standard-library templates are used here (their instantiations are
// COMDAT symbols the linker could share with portable code).
//
// qmatvec: weight bytes are unsigned (q4 nibbles 0..15; q8 values xor 0x80 = q + 128), the
// activations signed int8, so vpdpbusd multiplies them directly; the offsets (q4_0's -8, q8's
// +128, q4_1's m) become one float correction per block, sum_b c_b * s_x[b] with s_x = d_x *
// sum(q_x). Four blocks (128 values) per step (RowsDot); up to 4 activation rows share each
// weight load, and with one activation row 4 weight rows share each activation load.

#include <immintrin.h>

#include <cstring>

#include "common/model/cpu_kernels.h"

namespace ctxmem::model {
namespace {

// Weight rows one activation row is taken against at once (they share its loads).
constexpr int kRowsPerStep = 4;

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

// Lane pattern of a product vector: lanes 0..7 take scale lane a, lanes 8..15 scale lane b.
inline __m512i ScaleIndex(int a, int b) {
  return _mm512_set_epi32(b, b, b, b, b, b, b, b, a, a, a, a, a, a, a, a);
}

// y[(i0 + i) * ldy + r0 + r] = dot(W[r0 + r, :], x[i0 + i, :]) for r < kR, i < kN.
//
// Blocks are taken four at a time (a "quad", 128 values): for q8_0 two 64-byte loads (blocks
// 4q, 4q+1 and 4q+2, 4q+3); for q4 one 64-byte load (pairs 2q and 2q+1) whose low nibbles are
// blocks 4q and 4q+2 and whose high nibbles are 4q+1 and 4q+3, matched by reshuffling the
// activations' 256-bit halves. Each 32-bit lane of a vpdpbusd product belongs to one block, so
// a product vector is scaled by a vector of per-block scales d_w * d_x, computed once per 16
// blocks and spread over the lanes with one permute. A remaining pair and an odd last block go
// through the same accumulators. kR weight rows share every activation load.
template <int kType, int kR, int kN>
void RowsDot(const KernelWeights& w, int64_t r0, const KernelActivations& x, int64_t i0, float* y,
             int64_t ldy) {
  const int64_t nb = w.cols / 32;
  const int64_t nq = nb / 4;
  const uint8_t* row[kR];
  const uint16_t* d[kR];
  const uint16_t* m[kR];
  for (int r = 0; r < kR; ++r) {
    row[r] = w.qs + (r0 + r) * w.row_bytes;
    d[r] = w.d + (r0 + r) * nb;
    m[r] = kType == kKernelQ4_1 ? w.m + (r0 + r) * nb : nullptr;
  }
  const int8_t* xq[kN];
  for (int i = 0; i < kN; ++i) xq[i] = x.q + (i0 + i) * x.cols;
  const __m512i m4z = _mm512_set1_epi8(0x0F);
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512i base0 = kType == kKernelQ8_0 ? ScaleIndex(0, 1) : ScaleIndex(0, 2);
  const __m512i base1 = kType == kKernelQ8_0 ? ScaleIndex(2, 3) : ScaleIndex(1, 3);
  const __m512i four = _mm512_set1_epi32(4);
  __m512 acc0[kR][kN], acc1[kR][kN];
  for (int r = 0; r < kR; ++r) {
    for (int i = 0; i < kN; ++i) acc0[r][i] = acc1[r][i] = _mm512_setzero_ps();
  }
  for (int64_t b0 = 0; b0 < nb; b0 += 16) {
    const int64_t left = nb - b0;
    const __mmask16 mask =
        left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
    // s[r][i] lane j = d_w[b0 + j] * d_x[b0 + j]; the offsets sum_b c_b * s_x[b] go in directly.
    __m512 s[kR][kN];
    for (int r = 0; r < kR; ++r) {
      const __m512 dw = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, d[r] + b0));
      const __m512 c =
          OffsetCoefficients<kType>(d[r] + b0, m[r] != nullptr ? m[r] + b0 : nullptr, mask);
      for (int i = 0; i < kN; ++i) {
        s[r][i] = _mm512_mul_ps(dw, _mm512_maskz_loadu_ps(mask, x.d + (i0 + i) * nb + b0));
        acc1[r][i] =
            _mm512_fmadd_ps(c, _mm512_maskz_loadu_ps(mask, x.s + (i0 + i) * nb + b0), acc1[r][i]);
      }
    }
    __m512i idx0 = base0, idx1 = base1;
    const int64_t q_end = nq < b0 / 4 + 4 ? nq : b0 / 4 + 4;
    for (int64_t q = b0 / 4; q < q_end; ++q) {
      __m512i w0[kR], w1[kR];
      for (int r = 0; r < kR; ++r) {
        if (kType == kKernelQ8_0) {
          w0[r] = _mm512_xor_si512(_mm512_loadu_si512(row[r] + 128 * q), flip);
          w1[r] = _mm512_xor_si512(_mm512_loadu_si512(row[r] + 128 * q + 64), flip);
        } else {
          const __m512i raw = _mm512_loadu_si512(row[r] + 64 * q);
          w0[r] = _mm512_and_si512(raw, m4z);
          w1[r] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4z);
        }
      }
      for (int i = 0; i < kN; ++i) {
        const __m512i a = _mm512_loadu_si512(xq[i] + 128 * q);
        const __m512i b = _mm512_loadu_si512(xq[i] + 128 * q + 64);
        const __m512i x0 = kType == kKernelQ8_0 ? a : _mm512_shuffle_i64x2(a, b, 0x44);
        const __m512i x1 = kType == kKernelQ8_0 ? b : _mm512_shuffle_i64x2(a, b, 0xEE);
        for (int r = 0; r < kR; ++r) {
          const __m512i p0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w0[r], x0);
          const __m512i p1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w1[r], x1);
          acc0[r][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), _mm512_permutexvar_ps(idx0, s[r][i]),
                                       acc0[r][i]);
          acc1[r][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1), _mm512_permutexvar_ps(idx1, s[r][i]),
                                       acc1[r][i]);
        }
      }
      idx0 = _mm512_add_epi32(idx0, four);
      idx1 = _mm512_add_epi32(idx1, four);
    }
    if (b0 + 16 < nb || 4 * nq == nb) continue;
    // The last chunk's remaining blocks 4 nq .. nb-1: a pair (stored as one) and/or an odd last
    // block (GGML order for q4), at chunk lanes j = 4 nq - b0 on.
    const int j = static_cast<int>(4 * nq - b0);
    if (nb - 4 * nq >= 2) {
      const int64_t p = 2 * nq;
      const __m512i sidx = ScaleIndex(j, j + 1);
      for (int r = 0; r < kR; ++r) {
        const __m512i wv = LoadPair<kType>(row[r], p);
        for (int i = 0; i < kN; ++i) {
          const __m512i dot =
              _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv, _mm512_loadu_si512(xq[i] + 64 * p));
          acc0[r][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot),
                                       _mm512_permutexvar_ps(sidx, s[r][i]), acc0[r][i]);
        }
      }
    }
    if (nb & 1) {
      const int64_t bl = nb - 1;
      const __m512i sidx = _mm512_set1_epi32(static_cast<int>(bl - b0));
      for (int r = 0; r < kR; ++r) {
        const __m512i wv = _mm512_zextsi256_si512(LoadTail<kType>(row[r], bl));
        for (int i = 0; i < kN; ++i) {
          const __m512i a = _mm512_zextsi256_si512(
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq[i] + 32 * bl)));
          const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv, a);
          acc1[r][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot),
                                       _mm512_permutexvar_ps(sidx, s[r][i]), acc1[r][i]);
        }
      }
    }
  }
  for (int r = 0; r < kR; ++r) {
    for (int i = 0; i < kN; ++i) {
      y[(i0 + i) * ldy + r0 + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[r][i], acc1[r][i]));
    }
  }
}

// Rows [r_begin, r_end) against x rows [i0, i0 + kN): kR rows at a time, then one by one.
template <int kType, int kN, int kR>
void RowsDotRange(const KernelWeights& w, const KernelActivations& x, int64_t i0, float* y,
                  int64_t ldy, int64_t r_begin, int64_t r_end) {
  int64_t r = r_begin;
  for (; r + kR <= r_end; r += kR) RowsDot<kType, kR, kN>(w, r, x, i0, y, ldy);
  for (; r < r_end; ++r) RowsDot<kType, 1, kN>(w, r, x, i0, y, ldy);
}

template <int kType>
void QMatVecTyped(const KernelWeights& w, const KernelActivations& x, float* y, int64_t ldy,
                  int64_t r_begin, int64_t r_end) {
  int64_t i = 0;
  for (; i + 4 <= x.n; i += 4) RowsDotRange<kType, 4, 1>(w, x, i, y, ldy, r_begin, r_end);
  switch (x.n - i) {
    case 3:
      RowsDotRange<kType, 3, 1>(w, x, i, y, ldy, r_begin, r_end);
      break;
    case 2:
      RowsDotRange<kType, 2, 2>(w, x, i, y, ldy, r_begin, r_end);
      break;
    case 1:
      RowsDotRange<kType, 1, kRowsPerStep>(w, x, i, y, ldy, r_begin, r_end);
      break;
    default:
      break;
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
