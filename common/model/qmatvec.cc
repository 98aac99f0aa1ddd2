#include "common/model/qmatvec.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>

namespace ctxmem::model {

bool OmpThreadsSleep() {
  static const bool passive = [] {
    const char* env = std::getenv("OMP_WAIT_POLICY");
    std::string policy = env != nullptr ? env : "";
    for (char& c : policy) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return policy == "passive";
  }();
  return passive;
}

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
  // Small matrices are not worth waking a thread for: ~2 us per parallel region while OpenMP's
  // threads spin between regions (libgomp's default, OMP_WAIT_POLICY=active), ~40 us once they
  // sleep (passive). Measured on the 2-vCPU Zen 4 with kernel_bench: a 1 MB Q4_0 product took
  // 0.034 ms on one thread and 0.071 ms split in two under passive waiting, so there only
  // products of >= 8 MiB x rows (the 30 MB output matrix, batched steps) are split.
  const int64_t bytes_per_row = std::max<int64_t>(1, w.bytes() / std::max<int64_t>(rows, 1));
  const int64_t min_rows = std::max<int64_t>(16, (64 << 10) / bytes_per_row);
  const bool small_for_sleepers =
      OmpThreadsSleep() && w.bytes() * std::max<int64_t>(xv.n, 1) < (int64_t{8} << 20);
  if (threads <= 1 || rows < 2 * min_rows || small_for_sleepers) {
    k.qmatvec(wv, xv, y, ldy, 0, rows);
    return;
  }
  // Split by row groups: kernels take ranges on group boundaries (cpu_kernels.h).
  const int64_t groups = (rows + kRowGroup - 1) / kRowGroup;
  const int64_t grain =
      (std::max<int64_t>(min_rows, (rows + threads - 1) / threads) + kRowGroup - 1) / kRowGroup;
  at::parallel_for(0, groups, grain, [&](int64_t begin, int64_t end) {
    k.qmatvec(wv, xv, y, ldy, begin * kRowGroup, std::min(rows, end * kRowGroup));
  });
}

}  // namespace ctxmem::model
