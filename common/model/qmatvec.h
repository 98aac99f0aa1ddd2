#pragma once
// Decode-shaped products with quantized weights: y[n, rows] = x[n, cols] * W[rows, cols]^T for
// n = 1 to a few activation rows, on the CPU kernel family ActiveCpuIsa() picked (or one a
// caller names, for tests). Activations are quantized to Q8 blocks first (cpu_kernels.h says
// what that costs in accuracy). Output rows are split across SpinPool::Shared()'s threads (see
// qmatvec.cc for when a product is split).
// Thread-safety: Q8Activations is not thread-safe (one per stream); QMatMul is reentrant.

#include <cstdint>
#include <vector>

#include "common/model/cpu_features.h"
#include "common/model/cpu_kernels.h"
#include "common/model/quantized_matrix.h"

namespace ctxmem::model {

// The kernel table of `isa` (never one above DetectedCpuIsa(): that is capped here).
const CpuKernelTable& CpuKernels(CpuIsa isa);
// The table of ActiveCpuIsa().
const CpuKernelTable& ActiveCpuKernels();

// Reusable Q8 buffers for up to `n` rows of `cols` values; Quantize grows them when needed, so
// a decode loop that keeps one allocates only on its first step.
class Q8Activations {
 public:
  // Quantizes x [n, cols] (row-major, cols % 32 == 0).
  void Quantize(const CpuKernelTable& k, const float* x, int64_t n, int64_t cols);
  KernelActivations view() const { return {n_, cols_, q_.data(), d_.data(), s_.data()}; }

 private:
  int64_t n_ = 0, cols_ = 0;
  std::vector<int8_t> q_;  // [n, cols]
  std::vector<float> d_;   // [n, cols / 32]
  std::vector<float> s_;   // [n, cols / 32]
};

// y[i * ldy + r] = W[r, :] . x[i, :] for every row r of `w` and i < x.n; x.cols == w.cols().
// Rows are split between at most `n_threads` threads (0 = at::get_num_threads()).
void QMatMul(const CpuKernelTable& k, const QuantizedMatrix& w, const Q8Activations& x, float* y,
             int64_t ldy, int n_threads = 0);

}  // namespace ctxmem::model
