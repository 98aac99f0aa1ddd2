// Time and peak RSS of ONE chunked compression (or one plain full prefill) of the first N tokens
// of a text with the bundled model, printed as one JSON object on stdout. One setting per
// process, so the peak RSS (VmHWM) is clean: bench/run_compress_bench.sh runs every setting in a
// fresh process and builds the tables (issue 3 benchmark: FM vs IMDC, 2k/8k/32k tokens).
//
//   compress_bench --text FILE --tokens N --mode compress|full [--pruner P] [--memory-type FM]
//                  [--chunk C] [--memory M] [--threads T] [--score-mode exact|window]
//                  [--dtype fp32|bf16] [--device cpu|cuda]
//
// "compress" runs compress::Compress() without logits (what the compressor service does);
// "full" runs one Transformer::Forward over the N tokens without logits (the no-compression
// prefill: its KV cache holds all N tokens). Peak RSS is reported as the process peak and as the
// peak minus the RSS just before the run (model, tokenized text and allocator pools included in
// the baseline).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_input.h"
#include "common/compress/compression_config.h"
#include "common/compress/compressor.h"
#include "common/compress/peak_rss.h"
#include "common/compress/token_source.h"
#include "common/model/model.h"
#include "nlohmann/json.hpp"

namespace ctxmem::compress {
namespace {

struct Args {
  std::string text;
  std::string model;
  std::string mode = "compress";
  std::string pruner = "streaming_llm";
  std::string memory_type = "FM";
  std::string score_mode = "exact";
  std::string dtype = "fp32";  // ModelOptions::dtype of the weight matrices
  std::string device = "cpu";
  int64_t tokens = 2048;
  int64_t chunk = 512;
  int64_t memory = 256;
  int threads = 1;
};

int Fail(const std::string& what) {
  std::fprintf(stderr, "compress_bench: %s\n", what.c_str());
  return 1;
}

bool ParseArgs(int argc, char** argv, Args* a, std::string* error) {
  a->model = bench::DefaultModelPath();
  bench::BenchFlags flags;
  flags.Add("--text", &a->text);
  flags.Add("--model", &a->model);
  flags.Add("--mode", &a->mode);
  flags.Add("--pruner", &a->pruner);
  flags.Add("--memory-type", &a->memory_type);
  flags.Add("--score-mode", &a->score_mode);
  flags.Add("--dtype", &a->dtype);
  flags.Add("--device", &a->device);
  flags.Add("--tokens", &a->tokens);
  flags.Add("--chunk", &a->chunk);
  flags.Add("--memory", &a->memory);
  flags.Add("--threads", &a->threads);
  if (!flags.Parse(argc, argv, error)) return false;
  if (a->text.empty()) *error = "--text is required";
  if (a->mode != "compress" && a->mode != "full") *error = "--mode must be compress or full";
  if (a->tokens < 2) *error = "--tokens must be >= 2";
  if (a->threads < 1) *error = "--threads must be >= 1";
  return error->empty();
}

int64_t Mib(int64_t bytes) { return bytes < 0 ? -1 : bytes >> 20; }

int Run(const Args& args) {
  at::set_num_threads(args.threads);
  c10::InferenceMode inference_mode;
  model::ModelOptions model_options;
  model_options.n_threads = args.threads;
  model_options.dtype = args.dtype;
  model_options.device = args.device;
  model_options.decode = "dense";  // compression never decodes
  auto input = bench::LoadBenchInput(args.model, model_options, args.text, args.tokens);
  if (!input.ok()) return Fail(std::string(input.status().message()));
  const model::Model& llm = *input->model;
  std::vector<int32_t>& ids = input->tokens;
  ids.resize(args.tokens);

  auto config = bench::BenchConfig(args.pruner, args.memory_type, args.chunk, args.memory);
  if (!config.ok()) return Fail(std::string(config.status().message()));
  auto score_mode = ParseScoreMode(args.score_mode);
  if (!score_mode.ok()) return Fail(std::string(score_mode.status().message()));
  config->score_mode = *score_mode;
  if (args.mode == "compress") {
    if (absl::Status s = config->Validate(); !s.ok()) return Fail(std::string(s.message()));
  }

  const int64_t rss_before = CurrentRssBytes().value_or(-1);
  const bool reset = ResetPeakRss().ok();
  int64_t n_chunks = 1;
  int64_t memory_len = args.tokens;
  const double cpu0 = bench::CpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  if (args.mode == "compress") {
    SpanTokenSource source(ids);
    auto result = Compress(llm.transformer(), source, *config);
    if (!result.ok()) return Fail(std::string(result.status().message()));
    n_chunks = result->n_chunks;
    memory_len = result->memory.len();
  } else {
    at::Tensor tokens = at::empty({1, args.tokens}, at::kLong);  // [1, n]
    for (int64_t i = 0; i < args.tokens; ++i) tokens.data_ptr<int64_t>()[i] = ids[i];
    const at::Tensor positions = at::arange(args.tokens, at::kLong).view({1, args.tokens});
    model::ForwardOptions options;
    options.logits = model::LogitsMode::kNone;
    auto r = llm.transformer().Forward(tokens, positions, nullptr, options);
    if (!r.ok()) return Fail(std::string(r.status().message()));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu_seconds = bench::CpuSeconds() - cpu0;
  const int64_t peak = PeakRssBytes().value_or(-1);

  nlohmann::json j;
  j["mode"] = args.mode;
  j["pruner"] = args.mode == "full" ? "full_prefill" : args.pruner;
  j["memory_type"] = args.mode == "full" ? "-" : args.memory_type;
  j["score_mode"] = args.score_mode;
  j["tokens"] = args.tokens;
  j["chunk"] = args.chunk;
  j["memory"] = args.memory;
  j["threads"] = args.threads;
  j["dtype"] = args.dtype;
  j["device"] = args.device;
  j["seconds"] = seconds;
  j["cpu_seconds"] = cpu_seconds;
  j["tokens_per_second"] = static_cast<double>(args.tokens) / seconds;
  j["tokens_per_cpu_second"] = static_cast<double>(args.tokens) / cpu_seconds;
  j["n_chunks"] = n_chunks;
  j["memory_len"] = memory_len;
  j["rss_before_mib"] = Mib(rss_before);
  j["peak_rss_mib"] = Mib(peak);
  j["peak_minus_before_mib"] = (peak < 0 || rss_before < 0) ? -1 : Mib(peak - rss_before);
  j["peak_rss_reset"] = reset;
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace
}  // namespace ctxmem::compress

int main(int argc, char** argv) {
  ctxmem::compress::Args args;
  std::string error;
  if (!ctxmem::compress::ParseArgs(argc, argv, &args, &error)) {
    return ctxmem::compress::Fail(error);
  }
  return ctxmem::compress::Run(args);
}
