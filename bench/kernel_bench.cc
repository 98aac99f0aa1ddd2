// The decode path's bound and its kernels on this machine (issue #9's "what limits it"):
//   BM_ReadBandwidth/<threads>: streaming read of a 256 MiB buffer (fp32 dot of the buffer with
//     itself through the active kernel family), GB/s; decode reads every weight once per token,
//     so GB/s / (packed bytes per token) bounds decode tokens/s.
//   BM_QMatMul/<type>/<threads>/<n>/<mb>: QMatMul of n activation rows against a random
//     [rows, 576] matrix of `type` (0 q4_0, 1 q4_1, 2 q8_0) of `mb` MB: 96 is out of the L3
//     cache like one decode step's weights, 1 stays in L2 (the kernel's own speed); GB/s of
//     weight storage read (values + scales), the mean and the best repetition (on a shared
//     machine the best one is the least disturbed).
// Model-free: runs anywhere. Not in CI.

#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <vector>

#include "common/model/qmatvec.h"
#include "common/model/quantized_matrix.h"
#include "common/weights/float16.h"
#include "common/weights/ggml_type.h"

namespace ctxmem::model {
namespace {

constexpr int64_t kCols = 576;  // SmolLM2-135M's hidden size

void BM_ReadBandwidth(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  at::set_num_threads(threads);
  const int64_t n = int64_t{64} << 20;  // floats: 256 MiB
  std::vector<float> buf(n, 1.0f);
  const CpuKernelTable& k = ActiveCpuKernels();
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<float> part(threads, 0.0f);
    at::parallel_for(0, n, n / threads, [&](int64_t b, int64_t e) {
      part[at::get_thread_num()] += k.dot(buf.data() + b, buf.data() + b, e - b);
    });
    benchmark::DoNotOptimize(part.data());
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  state.counters["GB_per_s"] = static_cast<double>(n * sizeof(float)) *
                               static_cast<double>(state.iterations()) / seconds / 1e9;
}

// Random GGML blocks of `type` (weights ~0.05) for [rows, kCols].
QuantizedMatrix RandomMatrix(weights::GgmlType type, int64_t rows) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255);
  const int64_t nb = rows * kCols / 32;
  const int64_t bb = type == weights::GgmlType::kQ4_0   ? 18
                     : type == weights::GgmlType::kQ4_1 ? 20
                                                        : 34;
  std::vector<uint8_t> raw(nb * bb);
  for (auto& v : raw) v = static_cast<uint8_t>(byte(rng));
  const uint16_t d = weights::FloatToHalf(0.005f), m = weights::FloatToHalf(-0.04f);
  for (int64_t b = 0; b < nb; ++b) {
    std::memcpy(raw.data() + b * bb, &d, 2);
    if (type == weights::GgmlType::kQ4_1) std::memcpy(raw.data() + b * bb + 2, &m, 2);
  }
  return std::move(QuantizedMatrix::FromGgml(type, raw.data(), raw.size(), rows, kCols)).value();
}

void BM_QMatMul(benchmark::State& state) {
  const weights::GgmlType types[] = {weights::GgmlType::kQ4_0, weights::GgmlType::kQ4_1,
                                     weights::GgmlType::kQ8_0};
  const int64_t type = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  const int64_t n = state.range(2);
  const int64_t bytes_per_row =
      type == 2 ? kCols + kCols / 16 : kCols / 2 + kCols / 16 * (type + 1);
  const int64_t rows = (state.range(3) << 20) / bytes_per_row;
  const QuantizedMatrix w = RandomMatrix(types[type], rows);
  const CpuKernelTable& k = ActiveCpuKernels();
  at::set_num_threads(threads);
  std::vector<float> x(n * kCols);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  for (auto& v : x) v = normal(rng);
  Q8Activations qx;
  qx.Quantize(k, x.data(), n, kCols);
  std::vector<float> y(n * rows);
  QMatMul(k, w, qx, y.data(), rows, threads);  // warm-up
  double seconds = 0, best = 1e30;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    QMatMul(k, w, qx, y.data(), rows, threads);
    benchmark::DoNotOptimize(y.data());
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    seconds += t;
    best = std::min(best, t);
  }
  const double gb = static_cast<double>(w.bytes()) / 1e9;
  state.counters["GB_per_s"] = gb * static_cast<double>(state.iterations()) / seconds;
  state.counters["GB_per_s_best"] = gb / best;
  // Multiply-adds per second (rows x cols x activation rows): the compute side of many rows.
  state.counters["GMAC_per_s_best"] =
      static_cast<double>(rows) * static_cast<double>(kCols) * static_cast<double>(n) / best / 1e9;
  state.SetLabel(k.name);
}

BENCHMARK(BM_ReadBandwidth)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_QMatMul)
    ->ArgsProduct({{0, 1, 2}, {1, 2}, {1}, {96, 1}})
    ->Args({1, 2, 4, 96})
    ->ArgsProduct({{1, 2}, {1, 2}, {8}, {96}})
    ->ArgsProduct({{1}, {1}, {1, 4, 8, 16}, {1}})  // compute-bound: a 1 MiB matrix, 1 thread
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace ctxmem::model

BENCHMARK_MAIN();
