#include "common/compress/compressor.h"

#include <ATen/ops/allclose.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/tensor.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/compress/test_util.h"
#include "tests/unit/model/test_paths.h"

namespace ctxmem::compress {
namespace {

using ::testing::HasSubstr;

std::vector<int32_t> Tokens(int n) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = (i * 7 + 3) % 61;
  return t;
}

bool Close(const at::Tensor& a, const at::Tensor& b) {
  return a.sizes() == b.sizes() && at::allclose(a.cpu(), b.cpu(), 1e-4, 1e-5);
}

class CompressorTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!testing::DeviceAvailable(GetParam())) GTEST_SKIP() << GetParam() << " not available";
    device_ = testing::DeviceOf(GetParam());
    model_ = testing::MakeTinyTransformer(device_);
  }

  struct Out {
    CompressResult result;
    at::Tensor logits;  // [n, n_vocab], every chunk's logits concatenated
    std::vector<CompressProgress> progress;
  };

  Out Run(const std::vector<int32_t>& tokens, const CompressionConfig& config,
          bool announce_length = true) {
    SpanTokenSource source(tokens, announce_length);
    Out out;
    std::vector<at::Tensor> logits;
    CompressHooks hooks;
    hooks.on_progress = [&](const CompressProgress& p) { out.progress.push_back(p); };
    hooks.on_chunk_logits = [&](const ChunkLogits& c) {
      EXPECT_EQ(c.first_token, logits.empty() ? 0 : out.progress.back().n_tokens_done);
      logits.push_back(c.logits->cpu());
      return absl::OkStatus();
    };
    auto r = Compress(*model_, source, config, hooks);
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) out.result = std::move(*r);
    if (!logits.empty()) out.logits = at::cat(logits, 0);
    return out;
  }

  // Full-attention forward over all tokens: logits [n, n_vocab] and per layer pre-RoPE keys.
  model::ForwardResult Full(const std::vector<int32_t>& tokens, int64_t begin, int64_t n,
                            const model::KvCache* past, int64_t first_position) {
    auto ids = at::tensor(std::vector<int32_t>(tokens.begin() + begin, tokens.begin() + begin + n),
                          at::kInt)
                   .to(at::kLong)
                   .unsqueeze(0);
    auto pos = at::arange(first_position, first_position + n, at::kLong).unsqueeze(0);
    model::ForwardOptions o;
    o.return_pre_rope_keys = true;
    auto r = model_->Forward(ids, pos, past, o);
    EXPECT_TRUE(r.ok()) << r.status();
    return std::move(*r);
  }

  static CompressionConfig Config(const char* pruner, int64_t chunk, int64_t memory) {
    CompressionConfig c;
    c.pruner = pruner;
    c.chunk_size = chunk;
    c.memory_size = memory;
    return c;
  }

  c10::Device device_ = c10::Device(c10::kCPU);
  std::unique_ptr<model::Transformer> model_;
};

TEST_P(CompressorTest, NoCompressEqualsFullForward) {
  auto tokens = Tokens(40);
  Out out = Run(tokens, Config("no_compress", 7, 4));
  auto full = Full(tokens, 0, 40, nullptr, 0);
  EXPECT_TRUE(Close(out.logits, full.logits[0]));
  const Memory& m = out.result.memory;
  EXPECT_EQ(m.len(), 40);
  EXPECT_EQ(out.result.n_chunks, 6);
  for (int l = 0; l < 2; ++l) {
    EXPECT_TRUE(Close(m.layers[l].k, full.k_pre_rope[l][0])) << l;
    EXPECT_TRUE(Close(m.layers[l].v, full.v[l][0])) << l;
  }
}

// A budget that covers the whole context keeps everything: same as no_compress.
TEST_P(CompressorTest, BudgetCoveringContextEqualsNoCompress) {
  auto tokens = Tokens(40);
  Out reference = Run(tokens, Config("no_compress", 7, 4));
  for (const char* pruner : {"tova", "h2o", "roco", "conv", "streaming_llm", "random"}) {
    for (auto type : {MemoryType::kFm, MemoryType::kIm}) {
      CompressionConfig c = Config(pruner, 7, 64);
      c.memory_type = type;
      Out out = Run(tokens, c);
      EXPECT_TRUE(Close(out.logits, reference.logits)) << pruner;
      EXPECT_EQ(out.result.memory.len(), 40) << pruner;
      EXPECT_TRUE(Close(out.result.memory.layers[1].k, reference.result.memory.layers[1].k));
    }
  }
}

TEST_P(CompressorTest, LocalWindowEqualsIndependentChunks) {
  auto tokens = Tokens(20);
  Out out = Run(tokens, Config("local_window", 8, 4));
  std::vector<at::Tensor> parts;
  for (int64_t begin : {0, 8, 16}) {
    const int64_t n = std::min<int64_t>(8, 20 - begin);
    parts.push_back(Full(tokens, begin, n, nullptr, 0).logits[0].cpu());
  }
  EXPECT_TRUE(Close(out.logits, at::cat(parts, 0)));
  EXPECT_TRUE(out.result.memory.empty());
}

// The memory as past gives the model exactly what the next chunk of the compression saw, in
// both position modes: decoding continues after the memory.
TEST_P(CompressorTest, MemoryAsPastContinuesTheStream) {
  auto tokens = Tokens(40);
  for (const char* pruner : {"streaming_llm", "tova", "h2o", "snapkv"}) {
    for (auto mode : {PositionMode::kSlots, PositionMode::kOriginal}) {
      CompressionConfig c = Config(pruner, 8, 6);
      c.position_mode = mode;
      Out longer = Run(tokens, c);
      std::vector<int32_t> head(tokens.begin(), tokens.begin() + 32);
      Out shorter = Run(head, c);
      auto past = ToKvCache(shorter.result.memory, *model_);
      ASSERT_TRUE(past.ok()) << past.status();
      EXPECT_EQ(past->next_position, mode == PositionMode::kSlots ? 4 + 6 : 32);
      auto next = Full(tokens, 32, 8, &*past, past->next_position);
      EXPECT_TRUE(Close(next.logits[0], longer.logits.narrow(0, 32, 8)))
          << pruner << " " << PositionModeName(mode);
    }
  }
}

TEST_P(CompressorTest, MemoryStaysWithinBudgetEveryStep) {
  auto tokens = Tokens(60);
  for (const char* type : {"FM", "IM", "IMDC", "FIXED_INCREMENTAL", "DOUBLE_COMPRESS"}) {
    for (const char* pruner : {"tova", "streaming_llm"}) {
      CompressionConfig c = Config(pruner, 8, 10);
      auto choice = ParseMemoryType(type);
      c.memory_type = choice->type;
      c.decremental_chunk = choice->decremental_chunk;
      c.double_compress_size = 3;
      Out out = Run(tokens, c);
      ASSERT_FALSE(out.progress.empty());
      for (const CompressProgress& p : out.progress) {
        EXPECT_LE(p.memory_len, 4 + 10) << type << " " << pruner << " step " << p.step;
      }
      EXPECT_EQ(out.progress.back().n_tokens_done, 60);
      EXPECT_EQ(out.result.memory.n_tokens, 60);
      EXPECT_EQ(out.logits.size(0), 60);
    }
  }
}

TEST_P(CompressorTest, StreamOfUnknownLengthUsesExpectedLength) {
  auto tokens = Tokens(50);
  CompressionConfig c = Config("tova", 8, 12);
  c.memory_type = MemoryType::kIm;
  c.decremental_chunk = true;
  c.expected_length = 40;  // the stream turns out longer
  Out out = Run(tokens, c, /*announce_length=*/false);
  EXPECT_EQ(out.result.plan.basis(), PlanBasis::kExpectedLength);
  EXPECT_TRUE(out.result.plan.decremental());
  EXPECT_EQ(out.result.memory.len(), 4 + 12);  // the true last step ends at M
  EXPECT_EQ(out.logits.size(0), 50);

  c.expected_length = 0;
  out = Run(tokens, c, /*announce_length=*/false);
  EXPECT_EQ(out.result.plan.basis(), PlanBasis::kUnknownLength);
  EXPECT_EQ(out.result.n_chunks, 7);  // fixed chunks of 8
  EXPECT_EQ(out.result.memory.len(), 4 + 12);
}

TEST_P(CompressorTest, WindowScoreModeStaysWithinBudget) {
  CompressionConfig c = Config("snapkv", 8, 6);
  c.score_mode = ScoreMode::kWindow;
  c.score_window = 3;
  Out out = Run(Tokens(30), c);
  EXPECT_EQ(out.result.memory.len(), 4 + 6);
}

TEST_P(CompressorTest, RejectsBadInputNamingTheProblem) {
  std::vector<int32_t> none;
  SpanTokenSource empty(none);
  auto r = Compress(*model_, empty, Config("tova", 8, 6));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("empty"));

  auto tokens = Tokens(10);
  SpanTokenSource source(tokens);
  r = Compress(*model_, source, Config("tova", 0, 6));
  EXPECT_THAT(r.status().message(), HasSubstr("chunk_size=0"));

  std::vector<int32_t> bad = {1, 2, 500};
  SpanTokenSource bad_source(bad);
  r = Compress(*model_, bad_source, Config("tova", 8, 6));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("token id out of range"));
}

TEST_P(CompressorTest, HookErrorStopsTheCompression) {
  auto tokens = Tokens(30);
  SpanTokenSource source(tokens);
  int calls = 0;
  CompressHooks hooks;
  hooks.on_chunk_logits = [&](const ChunkLogits&) {
    return ++calls == 2 ? absl::CancelledError("stop") : absl::OkStatus();
  };
  auto r = Compress(*model_, source, Config("tova", 8, 6), hooks);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(calls, 2);
}

// The per-layer hooks: on_layer_scores sees every layer of every chunk with the memory the chunk
// read (scores [n_kv, rows, memory.len() + q]), also for a pruner that needs no scores;
// on_memory sees the memory after each step; an error from either stops the compression.
TEST_P(CompressorTest, LayerScoreAndMemoryHooks) {
  auto tokens = Tokens(30);
  for (const char* pruner : {"tova", "streaming_llm"}) {
    SpanTokenSource source(tokens);
    std::vector<std::pair<int64_t, int64_t>> seen;  // (step, layer)
    std::vector<int64_t> memory_lens;
    CompressHooks hooks;
    hooks.on_layer_scores = [&](const LayerScores& s) -> absl::Status {
      seen.emplace_back(s.step, s.layer);
      EXPECT_EQ(s.scores->dim(), 3);
      EXPECT_EQ(s.scores->size(2), s.memory->len() + 8) << pruner;  // chunks of 8, except last
      return absl::OkStatus();
    };
    hooks.on_memory = [&](int64_t step, const Memory& m) -> absl::Status {
      EXPECT_EQ(step, static_cast<int64_t>(memory_lens.size()));
      memory_lens.push_back(m.len());
      return absl::OkStatus();
    };
    SpanTokenSource first(std::span<const int32_t>(tokens.data(), 24));  // 3 chunks of 8
    auto r = Compress(*model_, first, Config(pruner, 8, 6), hooks);
    ASSERT_TRUE(r.ok()) << r.status();
    const int64_t n_layers = model_->config().n_layers;
    ASSERT_EQ(static_cast<int64_t>(seen.size()), 3 * n_layers) << pruner;
    for (int64_t i = 0; i < 3 * n_layers; ++i) {
      EXPECT_EQ(seen[i], std::make_pair(i / n_layers, i % n_layers));
    }
    EXPECT_EQ(memory_lens.size(), 3u);
    EXPECT_EQ(memory_lens.back(), r->memory.len());

    hooks.on_memory = [](int64_t step, const Memory&) {
      return step == 1 ? absl::DataLossError("memory hook") : absl::OkStatus();
    };
    auto stopped = Compress(*model_, source, Config(pruner, 8, 6), hooks);
    EXPECT_EQ(stopped.status().code(), absl::StatusCode::kDataLoss);
    hooks.on_layer_scores = [](const LayerScores& s) {
      return s.layer == 1 ? absl::AbortedError("score hook") : absl::OkStatus();
    };
    SpanTokenSource again(tokens);
    EXPECT_EQ(Compress(*model_, again, Config(pruner, 8, 6), hooks).status().code(),
              absl::StatusCode::kAborted);
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, CompressorTest, ::testing::ValuesIn(testing::TestDevices()));

// Perplexity over every position of the first 384 tokens of the shipped text (spec §10.1) with
// the bundled model: the shape of §10.2 / §12.14 must hold at small scale. (Kept small: about a
// minute of CPU. 1024 tokens, C = M = 128 gave no_compress 18.20, tova 18.69, streaming_llm
// 19.28, snapkv IM 19.34, local_window 27.10.)
TEST(CompressorBundledModelTest, PerplexityHasTheSeedShape) {
  if (!ctxmem::testing::BundledModelPresent()) GTEST_SKIP() << "bundled model not found";
  auto model = model::Model::Load(ctxmem::testing::BundledModelPath());
  ASSERT_TRUE(model.ok()) << model.status();
  std::ifstream in(ctxmem::testing::TestDataPath("text/pride_and_prejudice.txt"));
  std::stringstream text;
  text << in.rdbuf();
  auto ids = (*model)->tokenizer()->Encode(text.str().substr(0, 8000));
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_GE(ids->size(), 384u);
  std::vector<int32_t> tokens(ids->begin(), ids->begin() + 384);

  auto perplexity = [&](const char* pruner, MemoryType type) {
    CompressionConfig c;
    c.pruner = pruner;
    c.memory_type = type;
    c.chunk_size = 64;
    c.memory_size = 64;
    double nll = 0;
    int64_t count = 0;
    CompressHooks hooks;
    hooks.on_chunk_logits = [&](const ChunkLogits& chunk) {
      const int64_t q = chunk.logits->size(0);
      const int64_t n = std::min<int64_t>(q, 384 - chunk.first_token - 1);
      std::vector<int64_t> next(tokens.begin() + chunk.first_token + 1,
                                tokens.begin() + chunk.first_token + 1 + n);
      auto logp = chunk.logits->narrow(0, 0, n).log_softmax(-1);  // [n, n_vocab]
      nll -= logp.gather(1, at::tensor(next, at::kLong).unsqueeze(1)).sum().item<double>();
      count += n;
      return absl::OkStatus();
    };
    SpanTokenSource source(tokens);
    auto r = Compress((*model)->transformer(), source, c, hooks);
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(count, 383);
    const double ppl = std::exp(nll / count);
    std::cout << pruner << " " << MemoryTypeName(type) << " ppl=" << ppl << "\n";
    return ppl;
  };
  const double full = perplexity("no_compress", MemoryType::kFm);
  const double tova = perplexity("tova", MemoryType::kFm);
  const double streaming = perplexity("streaming_llm", MemoryType::kFm);
  const double local = perplexity("local_window", MemoryType::kFm);
  EXPECT_LT(full, tova);
  EXPECT_LT(full, streaming);
  EXPECT_LT(tova, local);
  EXPECT_LT(streaming, local);
}

}  // namespace
}  // namespace ctxmem::compress
