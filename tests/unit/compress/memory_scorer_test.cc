#include "common/compress/memory_scorer.h"

#include <ATen/ATen.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/compress/compressor.h"
#include "common/compress/token_source.h"
#include "common/model/perplexity.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/compress/test_util.h"
#include "tests/unit/model/test_paths.h"

namespace ctxmem::compress {
namespace {

using ::testing::HasSubstr;

std::vector<int32_t> Tokens(int n, int seed = 3) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = (i * 7 + seed) % 61;
  return t;
}

// -sum log p(ids[j] | ids[:j]) for j in [first, ids.size()) from one full forward, no past.
double FullForwardNll(const model::Transformer& model, const std::vector<int32_t>& ids,
                      int64_t first) {
  const int64_t n = static_cast<int64_t>(ids.size());
  std::vector<int64_t> ids64(ids.begin(), ids.end());
  auto tokens = at::tensor(ids64, at::kLong).view({1, n}).to(model.device());
  auto positions = at::arange(n, at::kLong).view({1, n}).to(model.device());
  auto out = model.Forward(tokens, positions, nullptr, {});
  EXPECT_TRUE(out.ok()) << out.status();
  auto logp = at::log_softmax(out->logits[0].cpu().to(at::kDouble), -1);  // [n, n_vocab]
  double nll = 0;
  for (int64_t j = first; j < n; ++j) nll -= logp[j - 1][ids[j]].item<double>();
  return nll;
}

// A no_compress memory of `prefix` (every entry kept, slot positions = true positions).
Memory FullMemory(const model::Transformer& model, const std::vector<int32_t>& prefix,
                  int64_t chunk) {
  CompressionConfig config;
  config.pruner = "no_compress";
  config.chunk_size = chunk;
  SpanTokenSource source(prefix);
  auto r = Compress(model, source, config);
  EXPECT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->memory.len(), static_cast<int64_t>(prefix.size()));
  return std::move(r->memory);
}

class MemoryScorerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!testing::DeviceAvailable(GetParam())) GTEST_SKIP() << GetParam() << " not available";
    model_ = testing::MakeTinyTransformer(testing::DeviceOf(GetParam()));
  }
  std::unique_ptr<model::Transformer> model_;
};

TEST_P(MemoryScorerTest, WithoutPromptTheFirstTokenOnlyConditions) {
  const auto ids = Tokens(40);
  const std::vector<int32_t> prefix(ids.begin(), ids.begin() + 24);
  const std::vector<int32_t> rest(ids.begin() + 24, ids.end());
  const Memory memory = FullMemory(*model_, prefix, 8);
  ScoreOptions options;
  options.chunk_tokens = 5;  // several forwards, logits rows split across them
  auto r = ScoreContinuation(*model_, memory, {}, rest, options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->n_scored, 15);
  ASSERT_EQ(r->token_logprobs.size(), 15u);
  const double expected = FullForwardNll(*model_, ids, 25);
  EXPECT_NEAR(r->total_nll, expected, 1e-4 * expected);
  double sum = 0;
  for (float lp : r->token_logprobs) {
    EXPECT_LE(lp, 0.0f);
    sum -= lp;
  }
  EXPECT_NEAR(sum, r->total_nll, 1e-3);
  EXPECT_NEAR(r->perplexity, std::exp(r->total_nll / 15), 1e-9 * r->perplexity);
}

TEST_P(MemoryScorerTest, APromptMakesTheFirstTokenScored) {
  const auto ids = Tokens(40);
  const std::vector<int32_t> prefix(ids.begin(), ids.begin() + 20);
  const std::vector<int32_t> prompt(ids.begin() + 20, ids.begin() + 26);
  const std::vector<int32_t> rest(ids.begin() + 26, ids.end());
  const Memory memory = FullMemory(*model_, prefix, 8);
  auto r = ScoreContinuation(*model_, memory, prompt, rest);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->n_scored, 14);
  EXPECT_EQ(r->n_prompt_tokens, 6);
  const double expected = FullForwardNll(*model_, ids, 26);
  EXPECT_NEAR(r->total_nll, expected, 1e-4 * expected);
}

TEST_P(MemoryScorerTest, EmptyPastEqualsPerplexityOfTheWholeStream) {
  const auto ids = Tokens(30, 5);
  auto r = ScoreContinuation(*model_, model::KvCache{}, {}, ids);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->n_scored, 29);
  const double expected = FullForwardNll(*model_, ids, 1);
  EXPECT_NEAR(r->total_nll, expected, 1e-4 * expected);
}

TEST_P(MemoryScorerTest, ThePastIsNotModified) {
  const auto ids = Tokens(30);
  const Memory memory = FullMemory(*model_, std::vector<int32_t>(ids.begin(), ids.begin() + 16), 8);
  auto past = ToKvCache(memory, *model_);
  ASSERT_TRUE(past.ok());
  const int64_t len = past->seq_len();
  const int64_t next = past->next_position;
  auto a = ScoreContinuation(*model_, *past, {}, std::vector<int32_t>(ids.begin() + 16, ids.end()));
  auto b = ScoreContinuation(*model_, *past, {}, std::vector<int32_t>(ids.begin() + 16, ids.end()));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(past->seq_len(), len);
  EXPECT_EQ(past->next_position, next);
  EXPECT_DOUBLE_EQ(a->total_nll, b->total_nll);
}

TEST_P(MemoryScorerTest, RejectsBadInput) {
  const std::vector<int32_t> one = {3};
  auto r = ScoreContinuation(*model_, model::KvCache{}, {}, one);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("at least 2 tokens"));
  // One token is enough after a prompt.
  EXPECT_TRUE(ScoreContinuation(*model_, model::KvCache{}, one, one).ok());
  EXPECT_EQ(ScoreContinuation(*model_, model::KvCache{}, {}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<int32_t> bad = {3, 61};
  r = ScoreContinuation(*model_, model::KvCache{}, {}, bad);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("outside [0, 61)"));
  ScoreOptions options;
  options.max_context = 10;
  r = ScoreContinuation(*model_, model::KvCache{}, Tokens(6), Tokens(6), options);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("context limit 10"));
}

INSTANTIATE_TEST_SUITE_P(Devices, MemoryScorerTest, ::testing::ValuesIn(testing::TestDevices()));

// The real model: scoring the rest of a text after a no_compress memory of its beginning is
// the full-forward NLL of those tokens (what EvaluatePerplexity sums over one window).
TEST(MemoryScorerBundledModelTest, NoCompressMemoryEqualsFullForward) {
  if (!ctxmem::testing::BundledModelPresent()) GTEST_SKIP() << "bundled model not found";
  auto model = model::Model::Load(ctxmem::testing::BundledModelPath());
  ASSERT_TRUE(model.ok()) << model.status();
  std::ifstream in(ctxmem::testing::TestDataPath("text/pride_and_prejudice.txt"));
  std::stringstream text;
  text << in.rdbuf();
  auto all = (*model)->tokenizer()->Encode(text.str().substr(0, 4000));
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_GE(all->size(), 320u);
  const std::vector<int32_t> ids(all->begin(), all->begin() + 320);
  const model::Transformer& t = (*model)->transformer();
  const Memory memory = FullMemory(t, std::vector<int32_t>(ids.begin(), ids.begin() + 200), 64);
  auto r = ScoreContinuation(t, memory, {}, std::vector<int32_t>(ids.begin() + 200, ids.end()));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->n_scored, 119);
  const double expected = FullForwardNll(t, ids, 201);
  EXPECT_NEAR(r->total_nll, expected, 1e-4 * expected);

  // No memory at all: the whole stream, exactly what EvaluatePerplexity reports.
  model::PerplexityOptions popts;
  popts.ctx = 320;
  auto ppl = model::EvaluatePerplexity(**model, ids, popts);
  ASSERT_TRUE(ppl.ok()) << ppl.status();
  auto whole = ScoreContinuation(t, model::KvCache{}, {}, ids);
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(whole->n_scored, ppl->n_scored);
  EXPECT_NEAR(whole->total_nll, ppl->total_nll, 1e-4 * ppl->total_nll);
  EXPECT_NEAR(whole->perplexity, ppl->ppl, 1e-4 * ppl->ppl);
}

}  // namespace
}  // namespace ctxmem::compress
