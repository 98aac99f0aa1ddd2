#include "common/eval/ppl_sweep.h"

#include <ATen/ops/arange.h>
#include <ATen/ops/tensor.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/compress/test_util.h"

namespace ctxmem::eval {
namespace {

using ::testing::HasSubstr;

std::vector<int32_t> Tokens(int n) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = (i * 7 + 3) % 61;
  return t;
}

TEST(PplSweepTest, PlanPutsTheReferenceFirstPerChunkSize) {
  PplSweepOptions o;
  o.eval_len = 64;
  o.chunk_sizes = {8, 16};
  o.memory_sizes = {4, 8};
  o.pruners = {"tova", "no_compress", "streaming_llm"};
  o.memory_types = {"FM", "IMDC"};
  auto plan = PlanPplSweep(o);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->size(), 2u * (1 + 2 * 2 * 2));
  EXPECT_EQ((*plan)[0].pruner, "no_compress");
  EXPECT_EQ((*plan)[0].chunk_size, 8);
  EXPECT_EQ((*plan)[1].pruner, "tova");
  EXPECT_EQ((*plan)[1].memory_size, 4);
  EXPECT_EQ((*plan)[1].memory_type, compress::MemoryType::kFm);
  EXPECT_TRUE((*plan)[2].decremental_chunk);
  EXPECT_EQ((*plan)[2].memory_type, compress::MemoryType::kIm);
  EXPECT_EQ((*plan)[9].pruner, "no_compress");
  EXPECT_EQ((*plan)[9].chunk_size, 16);
}

TEST(PplSweepTest, AllPrunersFoldsAliases) {
  PplSweepOptions o;
  o.eval_len = 64;
  auto plan = PlanPplSweep(o);  // pruners empty = all
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::vector<std::string> names;
  for (const auto& c : *plan) names.push_back(c.pruner);
  EXPECT_THAT(names, ::testing::Contains("conv"));
  EXPECT_THAT(names, ::testing::Not(::testing::Contains("snapkv")));
  EXPECT_EQ(std::count(names.begin(), names.end(), "no_compress"), 1);
}

TEST(PplSweepTest, RejectsBadOptionsNamingThem) {
  PplSweepOptions o;
  o.eval_len = 1;
  EXPECT_THAT(std::string(o.Validate().message()), HasSubstr("eval_len=1"));
  o.eval_len = 64;
  o.memory_types = {"XM"};
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  o.memory_types = {"FM"};
  o.pruners = {"nope"};
  EXPECT_THAT(std::string(o.Validate().message()), HasSubstr("unknown pruner 'nope'"));
  o.pruners = {};
  o.chunk_sizes = {0};
  EXPECT_THAT(std::string(o.Validate().message()), HasSubstr("chunk size 0"));
}

class PplSweepModelTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!compress::testing::DeviceAvailable(GetParam()))
      GTEST_SKIP() << GetParam() << " not available";
    model_ = compress::testing::MakeTinyTransformer(compress::testing::DeviceOf(GetParam()));
  }
  std::unique_ptr<model::Transformer> model_;
};

// no_compress through chunks scores exactly what one full forward scores (§10.1).
TEST_P(PplSweepModelTest, NoCompressEqualsFullForwardPerplexity) {
  const std::vector<int32_t> tokens = Tokens(48);
  compress::CompressionConfig c;
  c.pruner = "no_compress";
  c.chunk_size = 10;
  std::vector<int64_t> done;
  auto row =
      EvaluateCompressedPerplexity(*model_, tokens, 40, c, [&](int64_t n) { done.push_back(n); });
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_EQ(row->n_scored, 39);
  EXPECT_EQ(row->n_chunks, 4);
  EXPECT_EQ(done, (std::vector<int64_t>{10, 20, 30, 40}));

  auto ids = at::tensor(std::vector<int32_t>(tokens.begin(), tokens.begin() + 40), at::kInt)
                 .to(at::kLong)
                 .unsqueeze(0);
  auto pos = at::arange(40, at::kLong).unsqueeze(0);
  auto full = model_->Forward(ids, pos, nullptr, model::ForwardOptions{});
  ASSERT_TRUE(full.ok()) << full.status();
  auto logp = full->logits[0].narrow(0, 0, 39).log_softmax(-1).cpu();  // [39, n_vocab]
  auto next = ids[0].narrow(0, 1, 39).unsqueeze(1);
  const double nll = -logp.gather(1, next).sum().item<double>() / 39;
  EXPECT_NEAR(row->nll, nll, 1e-4 * std::abs(nll));
  EXPECT_NEAR(row->ppl, std::exp(nll), 1e-4 * std::exp(nll));
  // Per chunk: chunk t's logits predict tokens 10t+1 .. 10t+10 (the last chunk 9 of them).
  ASSERT_EQ(row->chunk_nll.size(), 4u);
  for (int64_t t = 0; t < 4; ++t) {
    const int64_t n = t < 3 ? 10 : 9;
    const double expect =
        -logp.narrow(0, 10 * t, n).gather(1, next.narrow(0, 10 * t, n)).sum().item<double>() / n;
    EXPECT_NEAR(row->chunk_nll[t], expect, 1e-4 * std::abs(expect)) << "chunk " << t;
  }
}

TEST_P(PplSweepModelTest, SweepRecordsFailedSettingsAndGoesOn) {
  const std::vector<int32_t> tokens = Tokens(40);
  PplSweepOptions o;
  o.eval_len = 40;
  o.chunk_sizes = {8};
  o.memory_sizes = {40};  // IMDC sizes 8, 20, 12, 4, -4: rejected (§12.8)
  o.pruners = {"streaming_llm"};
  o.memory_types = {"FM", "IMDC"};
  std::vector<std::string> finished;
  auto result = RunPplSweep(*model_, tokens, o, [&](const PplSweepProgress& p) {
    EXPECT_EQ(p.n_settings, 3);
    if (p.finished != nullptr) finished.push_back(p.finished->config.pruner);
  });
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->rows.size(), 3u);
  EXPECT_EQ(finished.size(), 3u);
  EXPECT_TRUE(result->rows[0].reference);
  EXPECT_TRUE(result->rows[1].error.empty());
  EXPECT_THAT(result->rows[2].error, HasSubstr("chunk"));
  // M covers the whole window, so FM streaming_llm is no_compress (budget >= context).
  EXPECT_NEAR(result->rows[1].ppl, result->rows[0].ppl, 1e-4 * result->rows[0].ppl);
  EXPECT_GT(result->rows[1].peak_rss_bytes, 0);

  nlohmann::json j = PplSweepToJson(*result);
  EXPECT_EQ(j["rows"].size(), 3u);
  EXPECT_NEAR(j["rows"][1]["ppl_vs_reference"].get<double>(), 1.0, 1e-4);
  EXPECT_EQ(j["rows"][1]["config"]["memory_type"], "FM");
  EXPECT_EQ(j["rows"][2]["config"]["memory_type"], "IMDC");
  const std::string md = PplSweepToMarkdown(*result);
  EXPECT_THAT(md, HasSubstr("| 8 | - | no_compress | - |"));
  EXPECT_THAT(md, HasSubstr("| pruner | M | FM | IMDC |"));
  EXPECT_THAT(md, HasSubstr("error: "));
}

TEST_P(PplSweepModelTest, TooFewTokensIsAnError) {
  const std::vector<int32_t> tokens = Tokens(10);
  PplSweepOptions o;
  o.eval_len = 20;
  auto result = RunPplSweep(*model_, tokens, o);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("eval_len=20"));
}

INSTANTIATE_TEST_SUITE_P(Devices, PplSweepModelTest,
                         ::testing::ValuesIn(compress::testing::TestDevices()));

}  // namespace
}  // namespace ctxmem::eval
