#pragma once
// The CPU kernels of the quantized decode path, one table per instruction-set family
// (cpu_kernels_scalar.cc, cpu_kernels_avx2.cc, cpu_kernels_avx512.cc). The AVX2 and AVX-512
// files are compiled with their own -m flags; everything they export is this table, so no
// inline function compiled with those flags can be picked by the linker for portable code.
// The tables are plain data: raw pointers in, raw pointers out, no allocation, no torch.
// Thread-safety: every kernel is reentrant; callers split output rows between threads.
//
// Numerics (shared by all families, tested against dequantize + fp32 matmul):
//   weights: GGML blocks of 32 values (QuantizedMatrix), v = d * q (+ m for q4_1)
//   activations: one Q8 block per 32 values, d_x = max|x| / 127, q_x = round-half-even(x / d_x)
//   y = sum over blocks of d_w * d_x * dot(q_w, q_x)  [+ m * d_x * sum(q_x) for q4_1]
// so the only approximation beyond fp32 rounding is the int8 activations, as in llama.cpp.

#include <cstddef>
#include <cstdint>

namespace ctxmem::model {

// Values of QuantizedMatrix's element types as seen by the kernels.
enum : int32_t { kKernelQ4_0 = 0, kKernelQ4_1 = 1, kKernelQ8_0 = 2 };

// Rows of a KernelWeights matrix per row group (one output vector of the AVX-512 kernel).
inline constexpr int64_t kRowGroup = 16;

// A quantized weight matrix [rows, cols] (cols % 32 == 0) in row tiles. Rows go in groups of
// kRowGroup (group g = rows 16g .. 16g+15; the last group padded with zero rows), and block b of
// a group (values 32b .. 32b+31 of its 16 rows) is one tile, tiles in order (g, b). Within a
// tile, "vector" k (k = 0..7) is 64 bytes whose byte 4j + t is value 4k + t of the group's row
// j: one 32-bit lane holds 4 consecutive values of one row, so a vpdpbusd against 4 broadcast
// activation values gives 16 rows' partial dots at once, and the 8 vectors of a tile add up in
// the same int32 lanes to the 16 rows' whole-block dots (one scale per lane, no shuffles).
//   q8_0: a tile is its 8 vectors in order, 512 bytes of int8 values.
//   q4_0 / q4_1: a tile is 256 bytes, 4 chunks of 64; chunk c holds vector 2c in its low
//     nibbles and vector 2c+1 in its high nibbles (0..15; q4_0 values nib - 8, q4_1 d * nib + m).
//   d: [groups, nb, 16] fp16 scales, row j of a group at lane j; m: the same for q4_1's
//     minimums (else null). Padded rows have zero values, scales and minimums.
// Kernels take row ranges [r_begin, r_end) with r_begin % 16 == 0 and r_end % 16 == 0 or
// r_end == rows; they never write outputs of padded rows.
struct KernelWeights {
  int32_t type;
  int64_t rows, cols;  // rows: the real rows; groups = ceil(rows / 16)
  const uint8_t* qs;   // [groups, nb, tile_bytes]
  const uint16_t* d;   // [groups, nb, 16]
  const uint16_t* m;   // [groups, nb, 16] or null
};

// Bytes of one tile: 256 for q4_0 / q4_1, 512 for q8_0.
inline constexpr int64_t KernelTileBytes(int32_t type) { return type == kKernelQ8_0 ? 512 : 256; }

// n rows of Q8 activations with `cols` values each.
struct KernelActivations {
  int64_t n, cols;
  const int8_t* q;  // [n, cols]
  const float* d;   // [n, cols / 32] block scales
  const float* s;   // [n, cols / 32] d * sum(q) per block
};

// One run of attention entries: n keys and n values, [n, head_dim] fp32 row-major each.
struct KernelKvSegment {
  const float* k;
  const float* v;
  int64_t n;
};

struct CpuKernelTable {
  const char* name;
  // y[i * ldy + r] = dot(W[r, :], x[i, :]) for r in [r_begin, r_end), i in [0, x.n)
  // (range rules in KernelWeights).
  void (*qmatvec)(const KernelWeights& w, const KernelActivations& x, float* y, int64_t ldy,
                  int64_t r_begin, int64_t r_end);
  // Quantizes one row x[cols] (cols % 32 == 0) into q[cols], d[cols/32], s[cols/32].
  void (*quantize_row_q8)(const float* x, int64_t cols, int8_t* q, float* d, float* s);
  // sum_k a[k] * b[k]
  float (*dot)(const float* a, const float* b, int64_t n);
  // y[k] += alpha * x[k]
  void (*axpy)(float alpha, const float* x, float* y, int64_t n);
  // Decode attention of the n_q query heads that share one kv head (GQA): for i < n_q,
  //   out[i, :] = sum_j p_ij v_j,  p_i = softmax_j(scale * q[i, :] . k_j)
  // over the entries of segs[0 .. n_segs) in order (at least one entry in all). q and out are
  // [n_q, hd]; scores is [n_q, total entries] scratch. Softmax in fp32 with the max
  // subtracted; exp is the family's own (the scalar table's std::exp is the reference).
  void (*attend)(const float* q, int64_t n_q, int64_t hd, float scale, const KernelKvSegment* segs,
                 int n_segs, float* scores, float* out);
  // out[k] = silu(gate[k]) * up[k] = gate[k] / (1 + exp(-gate[k])) * up[k] (the llama MLP).
  void (*silu_mul)(const float* gate, const float* up, float* out, int64_t n);
};

// Portable code (cpu_kernels_scalar.cc) that tables share. AttendByRows is `attend` computed
// one query head and one entry at a time through a family's own `dot` and `axpy` (the scalar
// and AVX2 tables'); PortableSiluMul is `silu_mul` with std::exp.
void AttendByRows(float (*dot)(const float*, const float*, int64_t),
                  void (*axpy)(float, const float*, float*, int64_t), const float* q, int64_t n_q,
                  int64_t hd, float scale, const KernelKvSegment* segs, int n_segs, float* scores,
                  float* out);
void PortableSiluMul(const float* gate, const float* up, float* out, int64_t n);

// The tables. Calling a table the CPU cannot run is undefined: pick through ActiveCpuIsa().
const CpuKernelTable* ScalarCpuKernels();
const CpuKernelTable* Avx2CpuKernels();
const CpuKernelTable* Avx512VnniCpuKernels();

}  // namespace ctxmem::model
