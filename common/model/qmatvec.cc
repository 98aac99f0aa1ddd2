#include "common/model/qmatvec.h"

#include <ATen/Parallel.h>

#include <algorithm>

#include "common/model/spin_pool.h"

namespace ctxmem::model {

const CpuKernelTable& CpuKernels(CpuIsa isa) {
  const CpuIsa top = DetectedCpuIsa();
  if (static_cast<int>(isa) > static_cast<int>(top)) isa = top;
  switch (isa) {
    case CpuIsa::kAvx512Vnni:
      return *Avx512VnniCpuKernels();
    case CpuIsa::kAvx2:
      return *Avx2CpuKernels();
    case CpuIsa::kScalar:
      break;
  }
  return *ScalarCpuKernels();
}

const CpuKernelTable& ActiveCpuKernels() {
  static const CpuKernelTable& k = CpuKernels(ActiveCpuIsa());
  return k;
}

void Q8Activations::Quantize(const CpuKernelTable& k, const float* x, int64_t n, int64_t cols) {
  n_ = n;
  cols_ = cols;
  const int64_t nb = cols / 32;
  if (static_cast<int64_t>(q_.size()) < n * cols) q_.resize(n * cols);
  if (static_cast<int64_t>(d_.size()) < n * nb) {
    d_.resize(n * nb);
    s_.resize(n * nb);
  }
  for (int64_t i = 0; i < n; ++i) {
    k.quantize_row_q8(x + i * cols, cols, q_.data() + i * cols, d_.data() + i * nb,
                      s_.data() + i * nb);
  }
}

void QMatMul(const CpuKernelTable& k, const QuantizedMatrix& w, const Q8Activations& x, float* y,
             int64_t ldy, int n_threads) {
  const KernelWeights wv = w.view();
  const KernelActivations xv = x.view();
  const int64_t rows = w.rows();
  const int threads = n_threads > 0 ? n_threads : at::get_num_threads();
  // A thread is worth using for >= 64 KiB of weights (kernel_bench, 2-vCPU Zen 4: a 1 MB Q4_0
  // product took 0.034 ms on one thread). SpinPool's workers spin between regions, so a split
  // costs ~1 us; with CTXMEM_SPIN_US=0 they sleep and a wake-up costs ~40 us (0.071 ms for that
  // product split in two), so then only products of >= 8 MiB x rows are split.
  SpinPool& pool = SpinPool::Shared();
  const int64_t bytes_per_row = std::max<int64_t>(1, w.bytes() / std::max<int64_t>(rows, 1));
  const int64_t min_rows = std::max<int64_t>(16, (64 << 10) / bytes_per_row);
  const bool small_for_sleepers =
      !pool.spins() && w.bytes() * std::max<int64_t>(xv.n, 1) < (int64_t{8} << 20);
  if (threads <= 1 || rows < 2 * min_rows || small_for_sleepers) {
    k.qmatvec(wv, xv, y, ldy, 0, rows);
    return;
  }
  // Chunks of row groups (kernels take ranges on group boundaries, cpu_kernels.h), about four
  // per thread so that one slow to start does not leave the others idle.
  const int64_t groups = (rows + kRowGroup - 1) / kRowGroup;
  const int64_t per_chunk = std::max<int64_t>(min_rows, rows / (4 * threads));
  const int64_t grain = (per_chunk + kRowGroup - 1) / kRowGroup;
  pool.ParallelFor(groups, grain, threads, [&](int64_t begin, int64_t end, int) {
    k.qmatvec(wv, xv, y, ldy, begin * kRowGroup, std::min(rows, end * kRowGroup));
  });
}

}  // namespace ctxmem::model
