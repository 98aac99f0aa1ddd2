// Incremental append cost (issue 12 benchmark): compresses the first N tokens of a text (the
// base, FM), seals it with its append state like the compressor does, then appends the next
// A tokens R times (decode the base blob, CompressAppend, seal the new blob) and reports each
// phase's wall and CPU time (median of R). Appending to a base built from 2k, 8k or 32k tokens
// should cost the same: the memory is bounded by M, whatever the base's length.
//
//   append_bench --text FILE --base-tokens N [--append-tokens 512] [--pruner tova]
//                [--chunk 512] [--memory 256] [--repeats 5] [--threads 1]
//
// Prints one JSON object on stdout; bench/run_append_bench.sh runs N in {2k, 8k, 32k}.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/bench_input.h"
#include "common/blob/memory_blob.h"
#include "common/compress/compressor.h"
#include "common/compress/memory_codec.h"
#include "common/compress/token_source.h"
#include "common/model/model.h"
#include "nlohmann/json.hpp"

namespace ctxmem::compress {
namespace {

struct Args {
  std::string text;
  std::string model;
  std::string pruner = "tova";
  int64_t base_tokens = 2048;
  int64_t append_tokens = 512;
  int64_t chunk = 512;
  int64_t memory = 256;
  int repeats = 5;
  int threads = 1;
};

int Fail(const std::string& what) {
  std::fprintf(stderr, "append_bench: %s\n", what.c_str());
  return 1;
}

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

bool ParseArgs(int argc, char** argv, Args* a, std::string* error) {
  a->model = bench::DefaultModelPath();
  bench::BenchFlags flags;
  flags.Add("--text", &a->text);
  flags.Add("--model", &a->model);
  flags.Add("--pruner", &a->pruner);
  flags.Add("--base-tokens", &a->base_tokens);
  flags.Add("--append-tokens", &a->append_tokens);
  flags.Add("--chunk", &a->chunk);
  flags.Add("--memory", &a->memory);
  flags.Add("--repeats", &a->repeats);
  flags.Add("--threads", &a->threads);
  if (!flags.Parse(argc, argv, error)) return false;
  if (a->text.empty()) *error = "--text is required";
  if (a->repeats < 1 || a->base_tokens < 1 || a->append_tokens < 1) *error = "counts must be >= 1";
  return error->empty();
}

int Run(const Args& args) {
  at::set_num_threads(args.threads);
  c10::InferenceMode inference_mode;
  model::ModelOptions model_options;
  model_options.n_threads = args.threads;
  auto input = bench::LoadBenchInput(args.model, model_options, args.text,
                                     args.base_tokens + args.append_tokens);
  if (!input.ok()) return Fail(std::string(input.status().message()));
  const model::Transformer& tf = input->model->transformer();
  auto config = bench::BenchConfig(args.pruner, "FM", args.chunk, args.memory);
  if (!config.ok()) return Fail(std::string(config.status().message()));
  if (absl::Status s = config->Validate(); !s.ok()) return Fail(std::string(s.message()));
  blob::BlobMetadata meta;
  meta.model_fingerprint = "sha256:bench";
  meta.compression_config = "{}";
  const KvFormat format;  // bf16, what the service stores by default

  const std::span<const int32_t> all(input->tokens);
  auto t0 = Clock::now();
  double c0 = bench::CpuSeconds();
  SpanTokenSource base_source(all.subspan(0, args.base_tokens));
  auto base = Compress(tf, base_source, *config);
  if (!base.ok()) return Fail(std::string(base.status().message()));
  const double base_seconds = Since(t0);
  const double base_cpu = bench::CpuSeconds() - c0;
  auto encoded = EncodeMemory(base->memory, format, meta, &base->state);
  if (!encoded.ok()) return Fail(std::string(encoded.status().message()));
  auto base_blob = blob::SealBlob(encoded->tensors, encoded->metadata);
  if (!base_blob.ok()) return Fail(std::string(base_blob.status().message()));

  std::vector<double> decode_s, compress_s, seal_s, total_s, total_cpu;
  int64_t out_bytes = 0;
  for (int r = 0; r < args.repeats; ++r) {
    const double cpu_start = bench::CpuSeconds();
    const auto start = Clock::now();
    auto info = blob::VerifyBlob(*base_blob);
    if (!info.ok()) return Fail(std::string(info.status().message()));
    auto resumable = DecodeResumableMemory(*base_blob, info->metadata, tf);
    if (!resumable.ok()) return Fail(std::string(resumable.status().message()));
    decode_s.push_back(Since(start));
    auto t1 = Clock::now();
    SpanTokenSource more(all.subspan(args.base_tokens, args.append_tokens));
    auto appended = CompressAppend(tf, more, *config, *resumable);
    if (!appended.ok()) return Fail(std::string(appended.status().message()));
    compress_s.push_back(Since(t1));
    auto t2 = Clock::now();
    auto enc = EncodeMemory(appended->memory, format, meta, &appended->state);
    if (!enc.ok()) return Fail(std::string(enc.status().message()));
    auto sealed = blob::SealBlob(enc->tensors, enc->metadata);
    if (!sealed.ok()) return Fail(std::string(sealed.status().message()));
    out_bytes = static_cast<int64_t>(sealed->size());
    seal_s.push_back(Since(t2));
    total_s.push_back(Since(start));
    total_cpu.push_back(bench::CpuSeconds() - cpu_start);
  }
  nlohmann::json j;
  j["pruner"] = args.pruner;
  j["chunk"] = args.chunk;
  j["memory"] = args.memory;
  j["base_tokens"] = args.base_tokens;
  j["append_tokens"] = args.append_tokens;
  j["repeats"] = args.repeats;
  j["threads"] = args.threads;
  j["base_compress_seconds"] = base_seconds;
  j["base_compress_cpu_seconds"] = base_cpu;
  j["base_blob_bytes"] = base_blob->size();
  j["appended_blob_bytes"] = out_bytes;
  j["decode_seconds"] = Median(decode_s);
  j["append_compress_seconds"] = Median(compress_s);
  j["seal_seconds"] = Median(seal_s);
  j["append_total_seconds"] = Median(total_s);
  j["append_total_cpu_seconds"] = Median(total_cpu);
  j["append_total_seconds_all"] = total_s;
  j["append_total_cpu_seconds_all"] = total_cpu;
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace
}  // namespace ctxmem::compress

int main(int argc, char** argv) {
  ctxmem::compress::Args args;
  std::string error;
  if (!ctxmem::compress::ParseArgs(argc, argv, &args, &error)) return ctxmem::compress::Fail(error);
  return ctxmem::compress::Run(args);
}
