// AVX2 + FMA + F16C family of the CPU kernel table (cpu_kernels.h). Compiled with -mavx2 -mfma
// -mf16c (CMakeLists.txt): only call through Avx2CpuKernels() after ActiveCpuIsa() said so. No
// standard-library templates are used here (see cpu_kernels_avx512.cc).
//
// qmatvec on row tiles (cpu_kernels.h), 8 rows (half a group) per 256-bit vector: each 32-bit
// lane holds 4 values of one row, multiplied with 4 broadcast activation bytes by vpmaddubsw
// (pairs of products fit int16: 15 * 127 * 2 for q4; q8 weights through the sign trick,
// |w| * sign(x, w), 128 * 127 * 2 < 32768) and vpmaddwd to int32 lanes, so a block's 8 vectors
// add up per lane to 8 rows' block dots; one fp32 FMA per block with d_w * d_x (and one for
// q4's offsets, s_x = d_x * sum(q_x)).

#include <immintrin.h>

#include <cstring>

#include "common/model/cpu_kernels.h"

namespace ctxmem::model {
namespace {

inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Rows 16g + 8h .. 16g + 8h + 7 (those below w.rows) against activation rows [i0, i0 + kN).
template <int kType, int kN>
void HalfGroupDot(const KernelWeights& w, int64_t g, int h, const KernelActivations& x, int64_t i0,
                  float* y, int64_t ldy) {
  constexpr int64_t kTile = kType == kKernelQ8_0 ? 512 : 256;
  constexpr int64_t kPrefetch = 16;  // blocks ahead (4 KiB for q4, 8 KiB for q8_0)
  const int64_t nb = w.cols / 32;
  const uint8_t* tiles = w.qs + g * nb * kTile + 32 * h;
  const uint16_t* d = w.d + g * nb * kRowGroup + 8 * h;
  const uint16_t* m = kType == kKernelQ4_1 ? w.m + g * nb * kRowGroup + 8 * h : nullptr;
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[kN];
  for (int i = 0; i < kN; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* t = tiles + b * kTile;
    if (h == 0) {
      // The tile kPrefetch blocks ahead (the h = 1 pass finds it cached): as in the AVX-512
      // family, the hardware prefetcher alone left the loads waiting on memory latency.
      for (int64_t o = 0; o < kTile; o += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(t + kPrefetch * kTile + o), _MM_HINT_T0);
      }
    }
    __m256i wv[8];  // [8 vectors] x [8 rows, 4 values]
    if (kType == kKernelQ8_0) {
      for (int k = 0; k < 8; ++k) {
        wv[k] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + 64 * k));
      }
    } else {
      for (int c = 0; c < 4; ++c) {
        const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + 64 * c));
        wv[2 * c] = _mm256_and_si256(raw, m4);
        wv[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
      }
    }
    const __m256 dw =
        _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d + b * kRowGroup)));
    __m256 cw = _mm256_setzero_ps();
    if (kType == kKernelQ4_1) {
      cw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(m + b * kRowGroup)));
    } else if (kType == kKernelQ4_0) {
      cw = _mm256_mul_ps(dw, _mm256_set1_ps(-8.0f));
    }
    for (int i = 0; i < kN; ++i) {
      const int64_t xi = i0 + i;
      const int8_t* xb = x.q + xi * x.cols + 32 * b;
      __m256i dot;
      if (kType == kKernelQ8_0) {
        dot = _mm256_setzero_si256();
        for (int k = 0; k < 8; ++k) {
          int32_t a;
          std::memcpy(&a, xb + 4 * k, 4);
          const __m256i av = _mm256_sign_epi8(_mm256_set1_epi32(a), wv[k]);
          dot = _mm256_add_epi32(
              dot,
              _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(wv[k], wv[k]), av), ones));
        }
      } else {
        // 8 pair sums of at most 15 * 127 * 2 each stay below 32768 in int16.
        __m256i sum16 = _mm256_setzero_si256();
        for (int k = 0; k < 8; ++k) {
          int32_t a;
          std::memcpy(&a, xb + 4 * k, 4);
          sum16 = _mm256_add_epi16(sum16, _mm256_maddubs_epi16(wv[k], _mm256_set1_epi32(a)));
        }
        dot = _mm256_madd_epi16(sum16, ones);
      }
      acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot),
                               _mm256_mul_ps(dw, _mm256_set1_ps(x.d[xi * nb + b])), acc[i]);
      if (kType != kKernelQ8_0) {
        acc[i] = _mm256_fmadd_ps(cw, _mm256_set1_ps(x.s[xi * nb + b]), acc[i]);
      }
    }
  }
  const int64_t r0 = g * kRowGroup + 8 * h, left = w.rows - r0;
  for (int i = 0; i < kN; ++i) {
    float* out = y + (i0 + i) * ldy + r0;
    if (left >= 8) {
      _mm256_storeu_ps(out, acc[i]);
    } else {
      float tmp[8];
      _mm256_storeu_ps(tmp, acc[i]);
      for (int64_t j = 0; j < left; ++j) out[j] = tmp[j];
    }
  }
}

template <int kType, int kN>
void GroupsDot(const KernelWeights& w, int64_t g_begin, int64_t g_end, const KernelActivations& x,
               int64_t i0, float* y, int64_t ldy) {
  for (int64_t g = g_begin; g < g_end; ++g) {
    HalfGroupDot<kType, kN>(w, g, 0, x, i0, y, ldy);
    if (g * kRowGroup + 8 < w.rows) HalfGroupDot<kType, kN>(w, g, 1, x, i0, y, ldy);
  }
}

template <int kType>
void QMatVecTyped(const KernelWeights& w, const KernelActivations& x, float* y, int64_t ldy,
                  int64_t r_begin, int64_t r_end) {
  const int64_t g0 = r_begin / kRowGroup, g1 = (r_end + kRowGroup - 1) / kRowGroup;
  // GroupsDot for 1..4 activation rows at a time: 4 while they last, then the rest at once.
  using Fn = void (*)(const KernelWeights&, int64_t, int64_t, const KernelActivations&, int64_t,
                      float*, int64_t);
  static constexpr Fn kByRows[] = {nullptr, GroupsDot<kType, 1>, GroupsDot<kType, 2>,
                                   GroupsDot<kType, 3>, GroupsDot<kType, 4>};
  // One row group at a time, every activation chunk over it while its tiles are in L1: the
  // weights stream from memory once per call, not once per chunk.
  for (int64_t g = g0; g < g1; ++g) {
    int64_t i = 0;
    for (; i + 4 <= x.n; i += 4) kByRows[4](w, g, g + 1, x, i, y, ldy);
    if (i < x.n) kByRows[x.n - i](w, g, g + 1, x, i, y, ldy);
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

// e^x in 8 lanes: the AVX-512 file's Cody-Waite reduction and Cephes polynomial (relative
// error ~2e-7) on x clamped to [-87.3, 88.3], with 2^n built in the exponent bits (n is in
// [-126, 127] there, so 2^n is a normal float).
inline __m256 Exp(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(
      _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);  // 2^n
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

// Entries asked for ahead of use in AttendHead (the AVX-512 family's kAttendPrefetch): a past is
// read once per step, so without the hint the loads wait on memory latency.
constexpr int64_t kAttendPrefetch = 8;

// The cache lines of [n] fp32 values at p (a hint; never faults past a segment's end).
inline void PrefetchFloats(const float* p, int64_t n) {
  for (int64_t k = 0; k < n; k += 16)
    _mm_prefetch(reinterpret_cast<const char*>(p + k), _MM_HINT_T0);
}

// One query head q [8 * kC] against the entries of segs: s [total] scratch, out [8 * kC].
// q is loaded once with the scale folded in; scores go 4 entries at a time (4 accumulators,
// one hadd tree for their 4 sums, not a horizontal sum per entry); the output accumulates in
// kC registers and is normalised once at the end.
template <int kC>
void AttendHead(const float* q, float scale, const KernelKvSegment* segs, int n_segs, int64_t total,
                float* s, float* out) {
  constexpr int64_t kHd = 8 * kC;
  __m256 qv[kC];
  for (int c = 0; c < kC; ++c)
    qv[c] = _mm256_mul_ps(_mm256_loadu_ps(q + 8 * c), _mm256_set1_ps(scale));
  __m128 mx4 = _mm_set1_ps(-__builtin_inff());
  float mx = -__builtin_inff();
  int64_t j = 0;
  for (int sg = 0; sg < n_segs; ++sg) {
    const float* kb = segs[sg].k;
    const int64_t n = segs[sg].n;
    int64_t e = 0;
    for (; e + 4 <= n; e += 4, j += 4) {
      const float* k0 = kb + e * kHd;
      PrefetchFloats(k0 + kAttendPrefetch * kHd, 4 * kHd);
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      for (int c = 0; c < kC; ++c) {
        a0 = _mm256_fmadd_ps(qv[c], _mm256_loadu_ps(k0 + 8 * c), a0);
        a1 = _mm256_fmadd_ps(qv[c], _mm256_loadu_ps(k0 + kHd + 8 * c), a1);
        a2 = _mm256_fmadd_ps(qv[c], _mm256_loadu_ps(k0 + 2 * kHd + 8 * c), a2);
        a3 = _mm256_fmadd_ps(qv[c], _mm256_loadu_ps(k0 + 3 * kHd + 8 * c), a3);
      }
      // [a0 a1 a2 a3 partial sums of lanes 0-3 | of lanes 4-7], then the halves added.
      const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
      const __m128 r = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
      _mm_storeu_ps(s + j, r);
      mx4 = _mm_max_ps(mx4, r);
    }
    for (; e < n; ++e, ++j) {
      __m256 a = _mm256_setzero_ps();
      for (int c = 0; c < kC; ++c)
        a = _mm256_fmadd_ps(qv[c], _mm256_loadu_ps(kb + e * kHd + 8 * c), a);
      s[j] = HorizontalSum(a);
      mx = s[j] > mx ? s[j] : mx;
    }
  }
  mx4 = _mm_max_ps(mx4, _mm_movehl_ps(mx4, mx4));
  mx4 = _mm_max_ss(mx4, _mm_movehdup_ps(mx4));
  mx = _mm_cvtss_f32(mx4) > mx ? _mm_cvtss_f32(mx4) : mx;
  // Probabilities (unnormalised) and their sum.
  const __m256 m = _mm256_set1_ps(mx);
  __m256 sum = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= total; k += 8) {
    const __m256 p = Exp(_mm256_sub_ps(_mm256_loadu_ps(s + k), m));
    _mm256_storeu_ps(s + k, p);
    sum = _mm256_add_ps(sum, p);
  }
  float tail = 0;
  for (; k < total; ++k) {
    float one[8] = {s[k] - mx};
    _mm256_storeu_ps(one, Exp(_mm256_loadu_ps(one)));
    s[k] = one[0];
    tail += one[0];
  }
  const float inv = 1.0f / (HorizontalSum(sum) + tail);
  // out = sum_j p_j v_j / sum.
  __m256 o[kC];
  for (int c = 0; c < kC; ++c) o[c] = _mm256_setzero_ps();
  j = 0;
  for (int sg = 0; sg < n_segs; ++sg) {
    const float* vb = segs[sg].v;
    for (int64_t e = 0; e < segs[sg].n; ++e, ++j) {
      const __m256 p = _mm256_set1_ps(s[j]);
      PrefetchFloats(vb + (e + kAttendPrefetch) * kHd, kHd);
      for (int c = 0; c < kC; ++c)
        o[c] = _mm256_fmadd_ps(p, _mm256_loadu_ps(vb + e * kHd + 8 * c), o[c]);
    }
  }
  for (int c = 0; c < kC; ++c)
    _mm256_storeu_ps(out + 8 * c, _mm256_mul_ps(o[c], _mm256_set1_ps(inv)));
}

// Head sizes 32, 64 and 128 one query head at a time (AttendHead; a GQA group's key and value
// rows stay in L1 between its heads); others take the portable path.
void Attend(const float* q, int64_t n_q, int64_t hd, float scale, const KernelKvSegment* segs,
            int n_segs, float* scores, float* out) {
  using Fn = void (*)(const float*, float, const KernelKvSegment*, int, int64_t, float*, float*);
  const Fn head = hd == 64    ? AttendHead<8>
                  : hd == 128 ? AttendHead<16>
                  : hd == 32  ? AttendHead<4>
                              : nullptr;
  if (head == nullptr) {
    AttendByRows(Dot, Axpy, q, n_q, hd, scale, segs, n_segs, scores, out);
    return;
  }
  int64_t total = 0;
  for (int s = 0; s < n_segs; ++s) total += segs[s].n;
  for (int64_t i = 0; i < n_q; ++i) {
    head(q + i * hd, scale, segs, n_segs, total, scores + i * total, out + i * hd);
  }
}

void SiluMul(const float* gate, const float* up, float* out, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    const __m256 g = _mm256_loadu_ps(gate + k);
    const __m256 e = Exp(_mm256_sub_ps(_mm256_setzero_ps(), g));  // e^-g
    const __m256 silu = _mm256_div_ps(g, _mm256_add_ps(one, e));
    _mm256_storeu_ps(out + k, _mm256_mul_ps(silu, _mm256_loadu_ps(up + k)));
  }
  if (k < n) PortableSiluMul(gate + k, up + k, out + k, n - k);
}

const CpuKernelTable kTable = {"avx2", QMatVec, QuantizeRowQ8, Dot, Axpy, Attend, SiluMul};

}  // namespace

const CpuKernelTable* Avx2CpuKernels() { return &kTable; }

}  // namespace ctxmem::model
