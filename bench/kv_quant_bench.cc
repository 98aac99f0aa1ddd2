// Bytes per original token vs perplexity of ONE compression of the first N tokens of a text
// with its memory stored as bf16 / f16 / f32 or KIVI int8 / int4 (issue 12 benchmark), printed
// as one JSON object on stdout. bench/run_kv_quant_bench.sh runs the grid, one setting per
// process, resumably, and builds the tables and the plot.
//
//   kv_quant_bench --text FILE --tokens N --pruner P --memory M --chunk C --kv-dtype D
//                  [--group-size G] [--memory-type FM] [--threads T]
//
// Perplexity is ctxmem eval-ppl's (spec §10.1: every position of the window scored from its
// chunk's logits), except that every chunk's forward reads the memory as a decoder would read
// it back from a blob of the given format (quantized, then dequantized: RoundTripMemory); the
// compression state itself stays in the model dtype, as in the compressor. The final memory is
// sealed as a real blob (EncodeMemory + SealBlob) for its size, and zstd (level 3 and 19) is
// applied to the sealed bytes to see whether payload compression would pay.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <zstd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_input.h"
#include "common/blob/memory_blob.h"
#include "common/compress/compression_config.h"
#include "common/compress/compressor.h"
#include "common/compress/kv_format.h"
#include "common/compress/kv_quantizer.h"
#include "common/compress/memory_codec.h"
#include "common/compress/token_source.h"
#include "common/model/model.h"
#include "common/model/torch_call.h"
#include "nlohmann/json.hpp"

namespace ctxmem::compress {
namespace {

struct Args {
  std::string text;
  std::string model;
  std::string pruner = "tova";
  std::string memory_type = "FM";
  std::string kv_dtype = "bf16";
  int64_t group_size = kDefaultKvGroupSize;
  int64_t tokens = 8192;
  int64_t chunk = 512;
  int64_t memory = 256;
  int threads = 1;
};

int Fail(const std::string& what) {
  std::fprintf(stderr, "kv_quant_bench: %s\n", what.c_str());
  return 1;
}

bool ParseArgs(int argc, char** argv, Args* a, std::string* error) {
  a->model = bench::DefaultModelPath();
  bench::BenchFlags flags;
  flags.Add("--text", &a->text);
  flags.Add("--model", &a->model);
  flags.Add("--pruner", &a->pruner);
  flags.Add("--memory-type", &a->memory_type);
  flags.Add("--kv-dtype", &a->kv_dtype);
  flags.Add("--group-size", &a->group_size);
  flags.Add("--tokens", &a->tokens);
  flags.Add("--chunk", &a->chunk);
  flags.Add("--memory", &a->memory);
  flags.Add("--threads", &a->threads);
  if (!flags.Parse(argc, argv, error)) return false;
  if (a->text.empty()) *error = "--text is required";
  if (a->tokens < 2) *error = "--tokens must be >= 2";
  if (a->threads < 1) *error = "--threads must be >= 1";
  return error->empty();
}

int64_t ZstdBytes(const std::string& bytes, int level) {
  std::string out(ZSTD_compressBound(bytes.size()), '\0');
  const size_t n = ZSTD_compress(out.data(), out.size(), bytes.data(), bytes.size(), level);
  return ZSTD_isError(n) ? -1 : static_cast<int64_t>(n);
}

int Run(const Args& args) {
  at::set_num_threads(args.threads);
  c10::InferenceMode inference_mode;
  model::ModelOptions model_options;
  model_options.n_threads = args.threads;
  auto input = bench::LoadBenchInput(args.model, model_options, args.text, args.tokens);
  if (!input.ok()) return Fail(std::string(input.status().message()));
  const model::Model& llm = *input->model;
  std::vector<int32_t>& tokens = input->tokens;
  tokens.resize(args.tokens);

  auto config = bench::BenchConfig(args.pruner, args.memory_type, args.chunk, args.memory);
  if (!config.ok()) return Fail(std::string(config.status().message()));
  if (absl::Status s = config->Validate(); !s.ok()) return Fail(std::string(s.message()));
  KvFormat format;
  auto dtype = ParseKvDtypeName(args.kv_dtype);
  if (!dtype.ok()) return Fail(std::string(dtype.status().message()));
  format.dtype = *dtype;
  format.group_size = args.group_size;
  if (absl::Status s = format.Validate(); !s.ok()) return Fail(std::string(s.message()));

  double nll = 0;
  int64_t n_scored = 0;
  CompressHooks hooks;
  hooks.on_chunk_logits = [&](const ChunkLogits& chunk) -> absl::Status {
    const int64_t q = chunk.logits->size(0);
    const int64_t n = std::min<int64_t>(q, args.tokens - chunk.first_token - 1);
    if (n <= 0) return absl::OkStatus();
    std::vector<int64_t> next(tokens.begin() + chunk.first_token + 1,
                              tokens.begin() + chunk.first_token + 1 + n);
    return model::TorchCall("chunk nll", [&] {
      at::Tensor target = at::tensor(next, at::kLong).unsqueeze(1);     // [n, 1]
      at::Tensor logp = chunk.logits->narrow(0, 0, n).log_softmax(-1);  // [n, n_vocab]
      nll -= logp.gather(1, target).to(at::kDouble).sum().item<double>();
      n_scored += n;
    });
  };
  hooks.past_transform = [&](const Memory& memory) { return RoundTripMemory(memory, format); };

  const double cpu0 = bench::CpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  SpanTokenSource source(tokens);
  auto result = Compress(llm.transformer(), source, *config, hooks);
  if (!result.ok()) return Fail(std::string(result.status().message()));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu_seconds = bench::CpuSeconds() - cpu0;

  blob::BlobMetadata base;
  base.model_fingerprint = "sha256:bench";
  base.compression_config = "{}";
  auto encoded = EncodeMemory(result->memory, format, base, &result->state);
  if (!encoded.ok()) return Fail(std::string(encoded.status().message()));
  auto sealed = blob::SealBlob(encoded->tensors, encoded->metadata);
  if (!sealed.ok()) return Fail(std::string(sealed.status().message()));
  uint64_t kv_bytes = 0;  // K/V payload (codes, or values) without scales, src, rank
  uint64_t scale_bytes = 0;
  for (const blob::RawTensor& t : encoded->tensors) {
    int64_t n = weights::StDtypeBytes(t.dtype);
    for (int64_t d : t.shape) n *= d;
    if (t.name.ends_with(".k") || t.name.ends_with(".v")) kv_bytes += n;
    if (t.name.find("_scale") != std::string::npos || t.name.find("_zero") != std::string::npos) {
      scale_bytes += n;
    }
  }
  const model::ModelConfig& mc = llm.transformer().config();
  // Full fp16 KV of every original token: K and V, every layer and kv head, 2 bytes each.
  const double full_fp16_per_token = 2.0 * mc.n_layers * mc.n_kv_heads * mc.head_dim * 2;
  const double blob_bytes = static_cast<double>(sealed->size());

  nlohmann::json j;
  j["pruner"] = args.pruner;
  j["memory_type"] = args.memory_type;
  j["chunk"] = args.chunk;
  j["memory"] = args.memory;
  j["kv_dtype"] = args.kv_dtype;
  j["group_size"] = format.quantized() ? args.group_size : 0;
  j["tokens"] = args.tokens;
  j["ppl"] = std::exp(nll / static_cast<double>(n_scored));
  j["nll"] = nll / static_cast<double>(n_scored);
  j["n_scored"] = n_scored;
  j["memory_len"] = result->memory.len();
  j["blob_bytes"] = sealed->size();
  j["kv_bytes"] = kv_bytes;
  j["scale_bytes"] = scale_bytes;
  j["bytes_per_token"] = blob_bytes / static_cast<double>(args.tokens);
  j["full_fp16_bytes_per_token"] = full_fp16_per_token;
  j["x_fewer_than_fp16"] = full_fp16_per_token * static_cast<double>(args.tokens) / blob_bytes;
  j["zstd3_bytes"] = ZstdBytes(*sealed, 3);
  j["zstd19_bytes"] = ZstdBytes(*sealed, 19);
  j["seconds"] = seconds;
  j["cpu_seconds"] = cpu_seconds;
  j["threads"] = args.threads;
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
