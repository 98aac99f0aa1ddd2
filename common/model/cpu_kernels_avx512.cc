// AVX-512 (F/BW/VL/DQ) + VNNI family of the CPU kernel table (cpu_kernels.h). Compiled with
// -mavx512* flags (CMakeLists.txt): only call through Avx512VnniCpuKernels() after
// ActiveCpuIsa() said so. No standard-library templates are used here (their instantiations are
// COMDAT symbols the linker could share with portable code).
//
// qmatvec on row tiles (cpu_kernels.h): each of a tile's 8 vectors holds 4 values of each of
// 16 rows per 32-bit lane, so vpdpbusd against 4 broadcast activation bytes adds 16 rows'
// partial dots, and the 8 vectors of a block add up in the same int32 lanes to whole-block
// dots: one conversion and two FMAs (scale, offset) per block for 16 rows, no shuffles and no
// horizontal sums. Weight bytes are unsigned (q4 nibbles 0..15; q8 values xor 0x80 = q + 128),
// the activations signed int8; the offsets (q4_0's -8, q8's +128, q4_1's m) become one FMA per
// block with s_x = d_x * sum(q_x). Up to 8 activation rows share each tile's loads.

#include <immintrin.h>

#include <cstring>

#include "common/model/cpu_kernels.h"

// GCC 12 warns that the `__Y` inside its own AVX-512 intrinsics (the _mm512_undefined_* operand
// of max/min/roundscale/scalef/reduce, GCC bug 105593) is used uninitialized once they are
// inlined here: a false positive, silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace ctxmem::model {
namespace {

// Lanes [0, min(left, 16)).
inline __mmask16 TailMask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
}

// Rows 16g .. 16g+15 (those below w.rows) against activation rows [i0, i0 + kN).
template <int kType, int kN>
void GroupDot(const KernelWeights& w, int64_t g, const KernelActivations& x, int64_t i0, float* y,
              int64_t ldy) {
  constexpr int64_t kTile = kType == kKernelQ8_0 ? 512 : 256;
  constexpr int64_t kPrefetch = 16;  // blocks ahead (4 KiB for q4, 8 KiB for q8_0)
  const int64_t nb = w.cols / 32;
  const uint8_t* tiles = w.qs + g * nb * kTile;
  const uint16_t* d = w.d + g * nb * kRowGroup;
  const uint16_t* m = kType == kKernelQ4_1 ? w.m + g * nb * kRowGroup : nullptr;
  const int8_t* xq[kN];
  const float* xd[kN];
  const float* xs[kN];
  __m512 acc[kN];
  for (int i = 0; i < kN; ++i) {
    xq[i] = x.q + (i0 + i) * x.cols;
    xd[i] = x.d + (i0 + i) * nb;
    xs[i] = x.s + (i0 + i) * nb;
    acc[i] = _mm512_setzero_ps();
  }
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* t = tiles + b * kTile;
    // The tile kPrefetch blocks ahead, asked for now: the hardware prefetcher alone left the
    // loads waiting on memory latency (kernel_bench, 96 MiB Q4_1, 2 threads, 2-vCPU Xeon: 1 row
    // 3.39 -> 2.11 ms, 8 rows 7.14 -> 4.10 ms; Q8_0 2.70 -> 1.94 and 6.21 -> 2.63 ms). A prefetch
    // past the matrix's end is a hint and never faults.
    for (int64_t o = 0; o < kTile; o += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(t + kPrefetch * kTile + o), _MM_HINT_T0);
    }
    __m512i wv[8];  // [8 vectors] x [16 rows, 4 values] unsigned bytes
    if (kType == kKernelQ8_0) {
      for (int k = 0; k < 8; ++k) wv[k] = _mm512_xor_si512(_mm512_loadu_si512(t + 64 * k), flip);
    } else {
      for (int c = 0; c < 4; ++c) {
        const __m512i raw = _mm512_loadu_si512(t + 64 * c);
        wv[2 * c] = _mm512_and_si512(raw, m4);
        wv[2 * c + 1] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
      }
    }
    // [16 rows] scales d_w and offset coefficients c: q4_1 m, q4_0 -8 d, q8_0 -128 d.
    const __m512 dw =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(d + b * kRowGroup)));
    const __m512 cw =
        kType == kKernelQ4_1
            ? _mm512_cvtph_ps(
                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m + b * kRowGroup)))
            : _mm512_mul_ps(dw, _mm512_set1_ps(kType == kKernelQ4_0 ? -8.0f : -128.0f));
    for (int i = 0; i < kN; ++i) {
      const int8_t* xb = xq[i] + 32 * b;
      __m512i dot0 = _mm512_setzero_si512(), dot1 = _mm512_setzero_si512();
      for (int k = 0; k < 8; k += 2) {
        int32_t a0, a1;
        std::memcpy(&a0, xb + 4 * k, 4);
        std::memcpy(&a1, xb + 4 * k + 4, 4);
        dot0 = _mm512_dpbusd_epi32(dot0, wv[k], _mm512_set1_epi32(a0));
        dot1 = _mm512_dpbusd_epi32(dot1, wv[k + 1], _mm512_set1_epi32(a1));
      }
      const __m512 dot = _mm512_cvtepi32_ps(_mm512_add_epi32(dot0, dot1));
      acc[i] = _mm512_fmadd_ps(dot, _mm512_mul_ps(dw, _mm512_set1_ps(xd[i][b])), acc[i]);
      acc[i] = _mm512_fmadd_ps(cw, _mm512_set1_ps(xs[i][b]), acc[i]);
    }
  }
  const int64_t r0 = g * kRowGroup;
  const __mmask16 mask = TailMask(w.rows - r0);
  for (int i = 0; i < kN; ++i) _mm512_mask_storeu_ps(y + (i0 + i) * ldy + r0, mask, acc[i]);
}

template <int kType>
void QMatVecTyped(const KernelWeights& w, const KernelActivations& x, float* y, int64_t ldy,
                  int64_t r_begin, int64_t r_end) {
  const int64_t g0 = r_begin / kRowGroup, g1 = (r_end + kRowGroup - 1) / kRowGroup;
  // GroupDot for 1..8 activation rows at a time: 8 while they last, then the rest at once.
  // Row groups are the outer loop: a group's tiles (nb * 256 or 512 bytes, < 32 KiB for the
  // bundled model) stay in L1 while every activation chunk passes over them, so the weights
  // stream from memory once per call however many rows there are (with the chunks outside,
  // a 48-row step read them 6 times).
  using Fn =
      void (*)(const KernelWeights&, int64_t, const KernelActivations&, int64_t, float*, int64_t);
  static constexpr Fn kByRows[] = {nullptr,
                                   GroupDot<kType, 1>,
                                   GroupDot<kType, 2>,
                                   GroupDot<kType, 3>,
                                   GroupDot<kType, 4>,
                                   GroupDot<kType, 5>,
                                   GroupDot<kType, 6>,
                                   GroupDot<kType, 7>,
                                   GroupDot<kType, 8>};
  for (int64_t g = g0; g < g1; ++g) {
    int64_t i = 0;
    for (; i + 8 <= x.n; i += 8) kByRows[8](w, g, x, i, y, ldy);
    if (i < x.n) kByRows[x.n - i](w, g, x, i, y, ldy);
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

// e^x in 16 lanes: Cody-Waite reduction x = n ln2 + r and the Cephes expf polynomial on
// |r| <= ln2 / 2 (relative error ~2e-7), then y * 2^n by vscalefps; x is clamped to
// [-87.3, 88.3] (e^x ~1e-38 .. ~2e38: no denormals, no infinities).
inline __m512 Exp(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(y, n);
}

// Query heads in groups of up to kAttendQ: each key and value row is loaded once per group.
constexpr int kAttendQ = 4;
// Key and value rows are asked for this many entries ahead: a stream's past is a few hundred
// KiB per layer, read once per step, so without it the loads wait on memory latency.
constexpr int64_t kAttendPrefetch = 8;

// The cache lines of one [n] fp32 row (a hint; never faults past a segment's end).
inline void PrefetchRow(const float* row, int64_t n) {
  for (int64_t k = 0; k < n; k += 16) {
    _mm_prefetch(reinterpret_cast<const char*>(row + k), _MM_HINT_T0);
  }
}

// s[k] = e^(s[k] - mx) over [0, n) in place; returns 1 / their sum (attend's softmax).
inline float ExpInPlace(float* s, int64_t n, float mx) {
  const __m512 m = _mm512_set1_ps(mx);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t k = 0; k < n; k += 16) {
    const __mmask16 mask = TailMask(n - k);
    const __m512 p = Exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, s + k), m));
    _mm512_mask_storeu_ps(s + k, mask, p);
    sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(mask, p));
  }
  return 1.0f / _mm512_reduce_add_ps(sum);
}

// The 16 sums of 16 vectors: r[m] = sum of v[m]'s lanes, by a transpose-and-add tree (45
// instructions, where 16 _mm512_reduce_add_ps take ~130).
inline __m512 SumsOf16(const __m512* v) {
  __m512 t[8], u[4];
  for (int k = 0; k < 8; ++k) {  // per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3]
    t[k] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * k], v[2 * k + 1]),
                         _mm512_unpackhi_ps(v[2 * k], v[2 * k + 1]));
  }
  for (int k = 0; k < 4; ++k) {  // per 128-bit lane: the quarter sums of v[4k .. 4k + 3]
    u[k] = _mm512_add_ps(_mm512_shuffle_ps(t[2 * k], t[2 * k + 1], 0x44),
                         _mm512_shuffle_ps(t[2 * k], t[2 * k + 1], 0xEE));
  }
  // Add the four 128-bit lanes: lane k of the result holds the sums of v[4k .. 4k + 3].
  const __m512 a =
      _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], 0x88), _mm512_shuffle_f32x4(u[0], u[1], 0xDD));
  const __m512 b =
      _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], 0x88), _mm512_shuffle_f32x4(u[2], u[3], 0xDD));
  return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x88), _mm512_shuffle_f32x4(a, b, 0xDD));
}

// Attend for head size 16 * kC and kQ <= 4 query heads (one GQA group), scores 4 entries at a
// time: 4 x kQ accumulators (the rest stay zero) and one SumsOf16 for their dots; the outputs
// accumulate in registers, at most 4 chunks (64 values) of each head per pass over the values.
template <int kC, int kQ>
void AttendFixed(const float* q, float scale, const KernelKvSegment* segs, int n_segs,
                 int64_t total, float* sg, float* og) {
  constexpr int64_t kHd = 16 * kC;
  const float* qi[kQ];
  for (int i = 0; i < kQ; ++i) qi[i] = q + i * kHd;
  // Lane 4i + j of a SumsOf16 result is head i's score of entry j: gathered per head.
  const __m512i by_head = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
  __m512 mxv = _mm512_set1_ps(-__builtin_inff());
  float mx[4] = {-__builtin_inff(), -__builtin_inff(), -__builtin_inff(), -__builtin_inff()};
  int64_t j = 0;
  for (int s = 0; s < n_segs; ++s) {
    const float* kb = segs[s].k;
    const int64_t n = segs[s].n;
    int64_t e = 0;
    for (; e + 4 <= n; e += 4, j += 4) {
      const float* k0 = kb + e * kHd;
      PrefetchRow(k0 + kAttendPrefetch * kHd, 4 * kHd);
      __m512 acc[16];  // [entry j][head i] at 4j + i
      for (int m = 0; m < 16; ++m) acc[m] = _mm512_setzero_ps();
      for (int c = 0; c < kC; ++c) {
        for (int jj = 0; jj < 4; ++jj) {
          const __m512 kv = _mm512_loadu_ps(k0 + jj * kHd + 16 * c);
          for (int i = 0; i < kQ; ++i) {
            acc[4 * jj + i] = _mm512_fmadd_ps(_mm512_loadu_ps(qi[i] + 16 * c), kv, acc[4 * jj + i]);
          }
        }
      }
      // [head i: entries j .. j + 3] in 128-bit lane i
      const __m512 r =
          _mm512_permutexvar_ps(by_head, _mm512_mul_ps(SumsOf16(acc), _mm512_set1_ps(scale)));
      mxv = _mm512_max_ps(mxv, r);
      alignas(64) float rs[16];
      _mm512_store_ps(rs, r);
      for (int i = 0; i < kQ; ++i) std::memcpy(sg + i * total + j, rs + 4 * i, 4 * sizeof(float));
    }
    for (; e < n; ++e, ++j) {  // the segment's last 0-3 entries, one at a time
      const float* kj = kb + e * kHd;
      for (int i = 0; i < kQ; ++i) {
        __m512 a = _mm512_setzero_ps();
        for (int c = 0; c < kC; ++c) {
          a = _mm512_fmadd_ps(_mm512_loadu_ps(qi[i] + 16 * c), _mm512_loadu_ps(kj + 16 * c), a);
        }
        const float v = _mm512_reduce_add_ps(a) * scale;
        sg[i * total + j] = v;
        mx[i] = v > mx[i] ? v : mx[i];
      }
    }
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, mxv);
  float inv[kQ];
  for (int i = 0; i < kQ; ++i) {
    for (int jj = 0; jj < 4; ++jj) mx[i] = lanes[4 * i + jj] > mx[i] ? lanes[4 * i + jj] : mx[i];
    inv[i] = ExpInPlace(sg + i * total, total, mx[i]);
  }
  // out_i = sum_j p_ij v_j * inv_i, 4 chunks of every head per pass.
  for (int c0 = 0; c0 < kC; c0 += 4) {
    constexpr int kPass = kC < 4 ? kC : 4;
    __m512 o[kQ][kPass];
    for (int i = 0; i < kQ; ++i) {
      for (int c = 0; c < kPass; ++c) o[i][c] = _mm512_setzero_ps();
    }
    int64_t jv = 0;
    for (int s = 0; s < n_segs; ++s) {
      const float* vb = segs[s].v + 16 * c0;
      for (int64_t e = 0; e < segs[s].n; ++e, ++jv) {
        const float* vj = vb + e * kHd;
        PrefetchRow(vj + kAttendPrefetch * kHd, 16 * kPass);
        __m512 vv[kPass];
        for (int c = 0; c < kPass; ++c) vv[c] = _mm512_loadu_ps(vj + 16 * c);
        for (int i = 0; i < kQ; ++i) {
          const __m512 p = _mm512_set1_ps(sg[i * total + jv]);
          for (int c = 0; c < kPass; ++c) o[i][c] = _mm512_fmadd_ps(p, vv[c], o[i][c]);
        }
      }
    }
    for (int i = 0; i < kQ; ++i) {
      const __m512 iv = _mm512_set1_ps(inv[i]);
      for (int c = 0; c < kPass; ++c) {
        _mm512_storeu_ps(og + i * kHd + 16 * (c0 + c), _mm512_mul_ps(o[i][c], iv));
      }
    }
  }
}

void Attend(const float* q, int64_t n_q, int64_t hd, float scale, const KernelKvSegment* segs,
            int n_segs, float* scores, float* out) {
  int64_t total = 0;
  for (int s = 0; s < n_segs; ++s) total += segs[s].n;
  using Fixed = void (*)(const float*, float, const KernelKvSegment*, int, int64_t, float*, float*);
  // [head size 32, 64, 128][heads 1..4]
  static constexpr Fixed kFixed[3][4] = {
      {AttendFixed<2, 1>, AttendFixed<2, 2>, AttendFixed<2, 3>, AttendFixed<2, 4>},
      {AttendFixed<4, 1>, AttendFixed<4, 2>, AttendFixed<4, 3>, AttendFixed<4, 4>},
      {AttendFixed<8, 1>, AttendFixed<8, 2>, AttendFixed<8, 3>, AttendFixed<8, 4>}};
  const int size = hd == 32 ? 0 : hd == 64 ? 1 : hd == 128 ? 2 : -1;
  if (size >= 0) {
    for (int64_t i0 = 0; i0 < n_q; i0 += kAttendQ) {
      const int nq = static_cast<int>(n_q - i0 < kAttendQ ? n_q - i0 : kAttendQ);
      kFixed[size][nq - 1](q + i0 * hd, scale, segs, n_segs, total, scores + i0 * total,
                           out + i0 * hd);
    }
    return;
  }
  for (int64_t i0 = 0; i0 < n_q; i0 += kAttendQ) {
    const int nq = static_cast<int>(n_q - i0 < kAttendQ ? n_q - i0 : kAttendQ);
    const float* qg = q + i0 * hd;
    float* sg = scores + i0 * total;
    float* og = out + i0 * hd;
    // Scores and their maxima.
    float mx[kAttendQ];
    for (int i = 0; i < nq; ++i) mx[i] = -__builtin_inff();
    int64_t j = 0;
    for (int s = 0; s < n_segs; ++s) {
      for (int64_t e = 0; e < segs[s].n; ++e, ++j) {
        const float* kj = segs[s].k + e * hd;
        PrefetchRow(kj + kAttendPrefetch * hd, hd);
        __m512 acc[kAttendQ];
        for (int i = 0; i < nq; ++i) acc[i] = _mm512_setzero_ps();
        for (int64_t k = 0; k < hd; k += 16) {
          const __mmask16 mask = TailMask(hd - k);
          const __m512 kv = _mm512_maskz_loadu_ps(mask, kj + k);
          for (int i = 0; i < nq; ++i) {
            acc[i] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, qg + i * hd + k), kv, acc[i]);
          }
        }
        for (int i = 0; i < nq; ++i) {
          const float v = _mm512_reduce_add_ps(acc[i]) * scale;
          sg[i * total + j] = v;
          mx[i] = v > mx[i] ? v : mx[i];
        }
      }
    }
    // Probabilities (unnormalised), their sums; the outputs start at zero.
    float inv[kAttendQ];
    for (int i = 0; i < nq; ++i) {
      inv[i] = ExpInPlace(sg + i * total, total, mx[i]);
      for (int64_t k = 0; k < hd; k += 16) {
        _mm512_mask_storeu_ps(og + i * hd + k, TailMask(hd - k), _mm512_setzero_ps());
      }
    }
    // out_i += p_ij / sum_i * v_j.
    j = 0;
    for (int s = 0; s < n_segs; ++s) {
      for (int64_t e = 0; e < segs[s].n; ++e, ++j) {
        const float* vj = segs[s].v + e * hd;
        PrefetchRow(vj + kAttendPrefetch * hd, hd);
        __m512 p[kAttendQ];
        for (int i = 0; i < nq; ++i) p[i] = _mm512_set1_ps(sg[i * total + j] * inv[i]);
        for (int64_t k = 0; k < hd; k += 16) {
          const __mmask16 mask = TailMask(hd - k);
          const __m512 vv = _mm512_maskz_loadu_ps(mask, vj + k);
          for (int i = 0; i < nq; ++i) {
            float* o = og + i * hd + k;
            _mm512_mask_storeu_ps(o, mask,
                                  _mm512_fmadd_ps(p[i], vv, _mm512_maskz_loadu_ps(mask, o)));
          }
        }
      }
    }
  }
}

void SiluMul(const float* gate, const float* up, float* out, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t k = 0; k < n; k += 16) {
    const __mmask16 mask = TailMask(n - k);
    const __m512 g = _mm512_maskz_loadu_ps(mask, gate + k);
    const __m512 e = Exp(_mm512_sub_ps(_mm512_setzero_ps(), g));  // e^-g
    const __m512 silu = _mm512_div_ps(g, _mm512_add_ps(one, e));
    _mm512_mask_storeu_ps(out + k, mask, _mm512_mul_ps(silu, _mm512_maskz_loadu_ps(mask, up + k)));
  }
}

const CpuKernelTable kTable = {"avx512_vnni", QMatVec, QuantizeRowQ8, Dot, Axpy, Attend, SiluMul};

}  // namespace

const CpuKernelTable* Avx512VnniCpuKernels() { return &kTable; }

}  // namespace ctxmem::model
