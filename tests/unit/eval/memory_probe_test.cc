#include "common/eval/memory_probe.h"

#include <ATen/ops/allclose.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/compress/test_util.h"

namespace ctxmem::eval {
namespace {

using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A memory of `n_layers` identical layers whose kv heads hold `src` (one row per head, sinks
// first); k, v and rank are placeholders the probe does not read.
compress::Memory SyntheticMemory(int64_t n_layers, const std::vector<std::vector<int64_t>>& src,
                                 int64_t n_sinks, int64_t n_tokens) {
  std::vector<int64_t> flat;
  for (const auto& row : src) flat.insert(flat.end(), row.begin(), row.end());
  const int64_t n_kv = static_cast<int64_t>(src.size());
  const int64_t len = static_cast<int64_t>(src[0].size());
  compress::Memory m;
  m.n_sinks = n_sinks;
  m.n_tokens = n_tokens;
  for (int64_t l = 0; l < n_layers; ++l) {
    compress::LayerMemory layer;
    layer.src = at::tensor(flat, at::kLong).reshape({n_kv, len});
    layer.k = at::zeros({n_kv, len, 2});
    layer.v = at::zeros({n_kv, len, 2});
    layer.rank = at::zeros({n_kv, len});
    m.layers.push_back(layer);
  }
  return m;
}

// Uneven chunks (as IMDC makes them): [0, 6), [6, 10), [10, 12); 2 sinks; heads keep different
// tokens. Every number below is counted by hand.
TEST(MemoryProbeTest, CountsByRealChunkBoundariesPerHead) {
  MemoryProbe probe;
  ASSERT_TRUE(
      probe.ObserveStep(SyntheticMemory(1, {{0, 1, 2, 3, 4, 5}, {0, 1, 2, 3, 4, 5}}, 2, 6)).ok());
  ASSERT_TRUE(
      probe.ObserveStep(SyntheticMemory(1, {{0, 1, 4, 5, 8, 9}, {0, 1, 2, 7, 8, 9}}, 2, 10)).ok());
  ASSERT_TRUE(
      probe.ObserveStep(SyntheticMemory(1, {{0, 1, 5, 9, 10, 11}, {0, 1, 9, 10, 11, 8}}, 2, 12))
          .ok());
  ProbeData data = std::move(probe).Finish();
  ASSERT_EQ(data.n_steps(), 3);
  EXPECT_THAT(data.chunk_begin, ElementsAre(0, 6, 10, 12));
  const LayerProbe& p = data.layers[0];
  EXPECT_THAT(p.memory_len, ElementsAre(6, 6, 6));
  // Step 0: all 4 non-sink entries of each head are chunk 0 (4 non-sink tokens).
  EXPECT_THAT(p.forgetting[0], DoubleNear(1.0, 1e-12));
  EXPECT_THAT(p.retention[0], ElementsAre(DoubleNear(1.0, 1e-12)));
  EXPECT_DOUBLE_EQ(p.keep_rate[0], 0.0);
  // Step 1: head 0 {4,5 | 8,9}, head 1 {2 | 7,8,9}; 8 entries, 3 from chunk 0.
  EXPECT_THAT(p.forgetting[1], DoubleNear(3.0 / 8, 1e-12));
  EXPECT_THAT(p.distribution[1], ElementsAre(DoubleNear(1.5, 1e-12), DoubleNear(2.5, 1e-12)));
  EXPECT_THAT(p.retention[1], ElementsAre(DoubleNear(3.0 / 8, 1e-12), DoubleNear(5.0 / 8, 1e-12)));
  EXPECT_THAT(p.keep_rate[1], DoubleNear(3.0 / 8, 1e-12));  // {4,5} and {2} were kept
  // Step 2 (src need not be sorted for counting): head 0 {5 | 9 | 10,11}, head 1 {9,8 | 10,11}.
  EXPECT_THAT(p.distribution[2],
              ElementsAre(DoubleNear(0.5, 1e-12), DoubleNear(1.5, 1e-12), DoubleNear(2.0, 1e-12)));
  EXPECT_THAT(p.retention[2], ElementsAre(DoubleNear(1.0 / 8, 1e-12), DoubleNear(3.0 / 8, 1e-12),
                                          DoubleNear(1.0, 1e-12)));
  EXPECT_THAT(p.forgetting[2], DoubleNear(1.0 / 8, 1e-12));
  // Mean over one layer is the layer; usage was not measured.
  EXPECT_EQ(data.mean.forgetting, p.forgetting);
  EXPECT_TRUE(std::isnan(p.usage_valid[1]));
}

TEST(MemoryProbeTest, RejectsAMemoryThatDoesNotContinueTheLastOne) {
  MemoryProbe probe;
  ASSERT_TRUE(probe.ObserveStep(SyntheticMemory(2, {{0, 1, 2}}, 1, 3)).ok());
  absl::Status s = probe.ObserveStep(SyntheticMemory(2, {{0, 1, 2}}, 1, 3));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("n_tokens=3"));
  s = probe.ObserveStep(SyntheticMemory(3, {{0, 1, 2}}, 1, 5));
  EXPECT_THAT(std::string(s.message()), HasSubstr("3 layers"));
  s = probe.ObserveStep(SyntheticMemory(2, {{0, 1, 2}, {0, 1, 2}}, 1, 5));
  EXPECT_THAT(std::string(s.message()), HasSubstr("2 kv heads, expected 1"));
  const MemoryUsage one[1] = {};
  s = probe.ObserveStep(SyntheticMemory(2, {{0, 1, 2}}, 1, 5), one);
  EXPECT_THAT(std::string(s.message()), HasSubstr("usage has 1 entries for 2 layers"));
  EXPECT_EQ(probe.data().n_steps(), 1);
}

// 1 kv head with n_rep = 2, 2 rows over [sink ; 2 memory ; 1 chunk]; row sums are 2 (two query
// heads summed). Key means {0.5, 0.8, 0.2, 0.5}, overall mean 0.5: memory key 1 is "valid".
TEST(MemoryProbeTest, MeasuresAttentionToTheNonSinkMemory) {
  at::Tensor scores = compress::testing::Mat({{0.6f, 1.0f, 0.4f, 0.0f}, {0.4f, 0.6f, 0.0f, 1.0f}})
                          .unsqueeze(0);  // [1, 2, 4]
  auto usage = MeasureMemoryUsage(scores, /*n_sinks=*/1, /*n_memory=*/3, /*n_rep=*/2);
  ASSERT_TRUE(usage.ok()) << usage.status();
  EXPECT_DOUBLE_EQ(usage->valid, 0.5);
  EXPECT_NEAR(usage->score, (0.8 + 0.2) / 2 / 2, 1e-7);
  auto none = MeasureMemoryUsage(scores, 1, 1, 2);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(std::isnan(none->valid));
  EXPECT_EQ(MeasureMemoryUsage(scores, 2, 5, 2).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MemoryProbeTest, JsonHasEverySeriesAndNullForUnmeasured) {
  MemoryProbe probe;
  const MemoryUsage usage[2] = {{0.25, 0.1}, {0.75, 0.3}};
  ASSERT_TRUE(probe.ObserveStep(SyntheticMemory(2, {{0, 1, 2}}, 1, 3)).ok());
  ASSERT_TRUE(probe.ObserveStep(SyntheticMemory(2, {{0, 2, 4}}, 1, 5), usage).ok());
  nlohmann::json j = ProbeDataToJson(std::move(probe).Finish());
  EXPECT_EQ(j["n_steps"], 2);
  EXPECT_EQ(j["n_layers"], 2);
  EXPECT_EQ(j["chunk_begin"], nlohmann::json({0, 3, 5}));
  EXPECT_TRUE(j["mean"]["usage_valid"][0].is_null());
  EXPECT_DOUBLE_EQ(j["mean"]["usage_valid"][1].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(j["layers"][1]["forgetting"][1].get<double>(), 0.5);
  EXPECT_EQ(j["layers"][0]["retention"][1].size(), 2u);
}

class CompressAndProbeTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!compress::testing::DeviceAvailable(GetParam()))
      GTEST_SKIP() << GetParam() << " not available";
    model_ = compress::testing::MakeTinyTransformer(compress::testing::DeviceOf(GetParam()));
    for (int i = 0; i < 40; ++i) tokens_.push_back((i * 7 + 3) % 61);
  }

  std::unique_ptr<model::Transformer> model_;
  std::vector<int32_t> tokens_;
};

// streaming_llm keeps the sinks and the newest M tokens, so with 2 sinks, C = 8, M = 12 the
// memory after step t is {0, 1} + [8t - 4, 8t + 8) from step 1 on, counted by hand:
//   step 0: {2..7}              forgetting 1,   retention {1}
//   step 1: {4..15}             forgetting 1/3, retention {2/3, 1},      keep rate 4/12
//   step 2: {12..23}            forgetting 0,   retention {0, 1/2, 1},   keep rate 4/12
TEST_P(CompressAndProbeTest, StreamingLlmForgettingCurveByHand) {
  compress::CompressionConfig c;
  c.pruner = "streaming_llm";
  c.chunk_size = 8;
  c.memory_size = 12;
  c.n_sink_tokens = 2;
  std::vector<int32_t> tokens(tokens_.begin(), tokens_.begin() + 24);
  compress::SpanTokenSource source(tokens);
  auto run = CompressAndProbe(*model_, source, c);
  ASSERT_TRUE(run.ok()) << run.status();
  const ProbeData& d = run->probe;
  ASSERT_EQ(d.n_steps(), 3);
  ASSERT_EQ(d.layers.size(), 2u);
  for (const LayerProbe& p : d.layers) {
    EXPECT_THAT(p.memory_len, ElementsAre(8, 14, 14));
    EXPECT_THAT(p.forgetting, ElementsAre(DoubleNear(1, 1e-12), DoubleNear(1.0 / 3, 1e-12),
                                          DoubleNear(0, 1e-12)));
    EXPECT_THAT(p.keep_rate, ElementsAre(DoubleNear(0, 1e-12), DoubleNear(1.0 / 3, 1e-12),
                                         DoubleNear(1.0 / 3, 1e-12)));
    EXPECT_THAT(p.retention[2],
                ElementsAre(DoubleNear(0, 1e-12), DoubleNear(0.5, 1e-12), DoubleNear(1, 1e-12)));
    EXPECT_THAT(p.distribution[1], ElementsAre(DoubleNear(4, 1e-12), DoubleNear(8, 1e-12)));
    // Usage was measured from step 1 on (step 0 has no memory) and is a share.
    EXPECT_TRUE(std::isnan(p.usage_valid[0]));
    EXPECT_GE(p.usage_valid[1], 0.0);
    EXPECT_LE(p.usage_valid[1], 1.0);
    EXPECT_GT(p.usage_score[2], 0.0);
    EXPECT_LT(p.usage_score[2], 1.0);
  }
  EXPECT_THAT(d.chunk_begin, ElementsAre(0, 8, 16, 24));
}

// The probe's loop must keep the driver's semantics: same memory, same progress.
TEST_P(CompressAndProbeTest, SameMemoryAsCompress) {
  struct Case {
    const char* pruner;
    compress::MemoryType type;
    bool decremental;
  };
  for (const Case& k : {Case{"tova", compress::MemoryType::kIm, false},
                        Case{"conv", compress::MemoryType::kIm, true},
                        Case{"h2o", compress::MemoryType::kFm, false},
                        Case{"streaming_llm", compress::MemoryType::kFixedIncremental, false}}) {
    SCOPED_TRACE(k.pruner);
    compress::CompressionConfig c;
    c.pruner = k.pruner;
    c.memory_type = k.type;
    c.decremental_chunk = k.decremental;
    c.chunk_size = 8;
    c.memory_size = 6;
    compress::SpanTokenSource a(tokens_), b(tokens_);
    auto plain = compress::Compress(*model_, a, c);
    auto probed = CompressAndProbe(*model_, b, c);
    ASSERT_TRUE(plain.ok()) << plain.status();
    ASSERT_TRUE(probed.ok()) << probed.status();
    EXPECT_EQ(plain->n_chunks, probed->result.n_chunks);
    EXPECT_EQ(probed->probe.n_steps(), plain->n_chunks);
    EXPECT_EQ(probed->probe.chunk_begin.back(), 40);
    ASSERT_EQ(plain->memory.len(), probed->result.memory.len());
    for (size_t l = 0; l < plain->memory.layers.size(); ++l) {
      EXPECT_EQ(compress::testing::Rows(plain->memory.layers[l].src),
                compress::testing::Rows(probed->result.memory.layers[l].src));
      EXPECT_TRUE(at::allclose(plain->memory.layers[l].k.cpu(),
                               probed->result.memory.layers[l].k.cpu(), 1e-5, 1e-6));
    }
  }
}

// IMDC chunks are uneven; the probe's boundaries are the plan's.
TEST_P(CompressAndProbeTest, ImdcBoundariesAreThePlans) {
  compress::CompressionConfig c;
  c.pruner = "streaming_llm";
  c.memory_type = compress::MemoryType::kIm;
  c.decremental_chunk = true;
  c.chunk_size = 8;
  c.memory_size = 8;
  compress::SpanTokenSource source(tokens_);
  auto run = CompressAndProbe(*model_, source, c, ProbeOptions{.attention_usage = false});
  ASSERT_TRUE(run.ok()) << run.status();
  std::vector<int64_t> expected = {0};
  for (int64_t size : run->result.plan.planned_sizes()) expected.push_back(expected.back() + size);
  EXPECT_EQ(run->probe.chunk_begin, expected);
  // streaming_llm keeps the newest entries: min(memory, chunk) of them come from the newest chunk.
  const ProbeData& d = run->probe;
  for (int64_t t = 0; t < d.n_steps(); ++t) {
    const int64_t in_memory = d.mean.memory_len[t] - c.n_sink_tokens;
    const int64_t chunk = expected[t + 1] - std::max<int64_t>(expected[t], c.n_sink_tokens);
    EXPECT_NEAR(d.mean.distribution[t].back(), std::min(in_memory, chunk), 1e-12) << t;
    EXPECT_TRUE(std::isnan(d.mean.usage_valid[t]));
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, CompressAndProbeTest,
                         ::testing::ValuesIn(compress::testing::TestDevices()));

}  // namespace
}  // namespace ctxmem::eval
