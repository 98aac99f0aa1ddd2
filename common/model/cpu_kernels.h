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

// A quantized weight matrix [rows, cols] (cols % 32 == 0), row-major blocks. Layout of one row:
//   q4_0 / q4_1: nb = cols / 32 blocks, row_bytes = cols / 2. Blocks go in pairs: pair p is 32
//     bytes whose low nibbles are block 2p's 32 values in order and whose high nibbles are
//     block 2p+1's; an odd last block is 16 bytes in GGML order (low nibbles values 0..15,
//     high nibbles 16..31). q4_0 values are nib - 8, q4_1 values d * nib + m.
//   q8_0: row_bytes = cols int8 values in order.
//   d: [rows, nb] fp16 scales; m: [rows, nb] fp16 minimums (q4_1 only, else null).
struct KernelWeights {
  int32_t type;
  int64_t rows, cols;
  const uint8_t* qs;
  int64_t row_bytes;
  const uint16_t* d;
  const uint16_t* m;
};

// n rows of Q8 activations with `cols` values each.
struct KernelActivations {
  int64_t n, cols;
  const int8_t* q;  // [n, cols]
  const float* d;   // [n, cols / 32] block scales
  const float* s;   // [n, cols / 32] d * sum(q) per block
};

struct CpuKernelTable {
  const char* name;
  // y[i * ldy + r] = dot(W[r, :], x[i, :]) for r in [r_begin, r_end), i in [0, x.n).
  void (*qmatvec)(const KernelWeights& w, const KernelActivations& x, float* y, int64_t ldy,
                  int64_t r_begin, int64_t r_end);
  // Quantizes one row x[cols] (cols % 32 == 0) into q[cols], d[cols/32], s[cols/32].
  void (*quantize_row_q8)(const float* x, int64_t cols, int8_t* q, float* d, float* s);
  // sum_k a[k] * b[k]
  float (*dot)(const float* a, const float* b, int64_t n);
  // y[k] += alpha * x[k]
  void (*axpy)(float alpha, const float* x, float* y, int64_t n);
};

// The tables. Calling a table the CPU cannot run is undefined: pick through ActiveCpuIsa().
const CpuKernelTable* ScalarCpuKernels();
const CpuKernelTable* Avx2CpuKernels();
const CpuKernelTable* Avx512VnniCpuKernels();

}  // namespace ctxmem::model
