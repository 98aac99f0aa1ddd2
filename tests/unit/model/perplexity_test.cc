#include "common/model/perplexity.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/model/model.h"
#include "common/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/unit/model/test_paths.h"

namespace ctxmem::model {
namespace {

using ctxmem::testing::BundledModelPath;
using ctxmem::testing::BundledModelPresent;
using ctxmem::testing::TestDataPath;

constexpr double kRelTolerance = 0.005;  // 0.5 %

nlohmann::json ReadJson(const std::string& rel) {
  std::ifstream in(TestDataPath(rel));
  EXPECT_TRUE(in.good()) << "missing " << TestDataPath(rel);
  if (!in.good()) return nlohmann::json::object();
  return nlohmann::json::parse(in);
}

class PerplexityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!BundledModelPresent()) return;
    at::set_num_threads(2);
    auto m = Model::Load(BundledModelPath());
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = std::move(*m).release();
    // The goldens score the first 8192 tokens of the book; ~4 characters per token, so the
    // first 80k characters are plenty and tokenising them gives the same leading ids.
    std::ifstream in(TestDataPath("text/pride_and_prejudice.txt"), std::ios::binary);
    ASSERT_TRUE(in.good());
    std::stringstream buffer;
    buffer << in.rdbuf();
    auto ids = model_->tokenizer()->Encode(buffer.str().substr(0, 80000));
    ASSERT_TRUE(ids.ok()) << ids.status();
    book_ids_ = new std::vector<int32_t>(std::move(*ids));
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
    delete book_ids_;
    book_ids_ = nullptr;
  }
  void SetUp() override {
    if (model_ == nullptr) GTEST_SKIP() << "bundled model not found: " << BundledModelPath();
  }

  // Runs ctx-windows over the first n_tokens book ids; returns the result and each window's NLL.
  static PerplexityResult Run(int64_t ctx, int64_t n_tokens, std::vector<double>* window_nll) {
    PerplexityOptions o;
    o.ctx = ctx;
    o.max_tokens = n_tokens;
    double previous = 0;
    o.progress = [&](const PerplexityProgress& p) {
      window_nll->push_back(p.total_nll - previous);
      previous = p.total_nll;
    };
    auto r = EvaluatePerplexity(*model_, *book_ids_, o);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : PerplexityResult{};
  }

  static Model* model_;
  static std::vector<int32_t>* book_ids_;
};
Model* PerplexityTest::model_ = nullptr;
std::vector<int32_t>* PerplexityTest::book_ids_ = nullptr;

TEST_F(PerplexityTest, BookTokensMatchTransformers) {
  const nlohmann::json j = ReadJson("model/hf_tokenizer_ids.json");
  const auto hf_ids = j.at("ids").get<std::vector<int32_t>>();
  ASSERT_GE(book_ids_->size(), hf_ids.size());
  EXPECT_EQ(std::vector<int32_t>(book_ids_->begin(), book_ids_->begin() + hf_ids.size()), hf_ids)
      << "our token ids differ from HF's: the ppl comparison below is not like for like";
}

TEST_F(PerplexityTest, MatchesTransformersCtx1024) {
  const nlohmann::json j = ReadJson("model/ppl.json");
  const nlohmann::json* golden = nullptr;
  for (const auto& r : j.at("results")) {
    if (r.at("ctx").get<int64_t>() == 1024) golden = &r;
  }
  ASSERT_NE(golden, nullptr);
  const int64_t n_tokens = j.at("n_tokens").get<int64_t>();
  ASSERT_GE(static_cast<int64_t>(book_ids_->size()), n_tokens);
  std::vector<double> window_nll;
  const PerplexityResult r = Run(1024, n_tokens, &window_nll);
  EXPECT_EQ(r.n_windows, golden->at("n_windows").get<int64_t>());
  EXPECT_EQ(r.n_scored, golden->at("count").get<int64_t>());
  const double ppl = golden->at("ppl").get<double>();
  EXPECT_NEAR(r.ppl, ppl, kRelTolerance * ppl) << "ours " << r.ppl << " vs HF " << ppl;
  EXPECT_NEAR(r.total_nll, golden->at("total_nll").get<double>(),
              kRelTolerance * golden->at("total_nll").get<double>());
  const auto hf_windows = golden->at("window_nll").get<std::vector<double>>();
  ASSERT_EQ(window_nll.size(), hf_windows.size());
  for (size_t w = 0; w < hf_windows.size(); ++w) {
    EXPECT_NEAR(window_nll[w], hf_windows[w], kRelTolerance * hf_windows[w]) << "window " << w;
  }
  EXPECT_GT(r.tokens_per_second, 0);
  std::printf("ppl ctx=1024 over %lld tokens: ours %.4f, HF %.4f (%.3f%%), %.0f tokens/s\n",
              static_cast<long long>(n_tokens), r.ppl, ppl, 100.0 * (r.ppl - ppl) / ppl,
              r.tokens_per_second);
}

TEST_F(PerplexityTest, MatchesTransformersCtx512FirstWindows) {
  // The first 4 windows of the ctx=512 golden (the whole run takes as long as ctx=1024's).
  const nlohmann::json j = ReadJson("model/ppl.json");
  const nlohmann::json* golden = nullptr;
  for (const auto& r : j.at("results")) {
    if (r.at("ctx").get<int64_t>() == 512) golden = &r;
  }
  ASSERT_NE(golden, nullptr);
  const auto hf_windows = golden->at("window_nll").get<std::vector<double>>();
  ASSERT_GE(hf_windows.size(), 4u);
  std::vector<double> window_nll;
  const PerplexityResult r = Run(512, 4 * 512, &window_nll);
  EXPECT_EQ(r.n_windows, 4);
  EXPECT_EQ(r.n_scored, 4 * 511);
  double hf_total = 0;
  for (int w = 0; w < 4; ++w) {
    hf_total += hf_windows[w];
    EXPECT_NEAR(window_nll[w], hf_windows[w], kRelTolerance * hf_windows[w]) << "window " << w;
  }
  const double hf_ppl = std::exp(hf_total / (4 * 511));
  EXPECT_NEAR(r.ppl, hf_ppl, kRelTolerance * hf_ppl);
}

TEST_F(PerplexityTest, ShortLastWindowIsScoredAndSingleTokenTailDropped) {
  std::vector<double> nll;
  PerplexityResult r = Run(4, 10, &nll);  // windows of 4, 4, 2 tokens
  EXPECT_EQ(r.n_windows, 3);
  EXPECT_EQ(r.n_scored, 3 + 3 + 1);
  nll.clear();
  r = Run(4, 9, &nll);  // 4, 4 and a lone token with nothing to predict
  EXPECT_EQ(r.n_windows, 2);
  EXPECT_EQ(r.n_scored, 6);
  EXPECT_NEAR(r.ppl, std::exp(r.total_nll / 6), 1e-9);
}

TEST_F(PerplexityTest, RejectsBadInput) {
  PerplexityOptions o;
  o.ctx = 1;
  EXPECT_EQ(EvaluatePerplexity(*model_, *book_ids_, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.ctx = model_->config().max_positions + 1;
  auto r = EvaluatePerplexity(*model_, *book_ids_, o);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(std::to_string(model_->config().max_positions)),
            std::string::npos);
  o.ctx = 16;
  const std::vector<int32_t> one = {5};
  EXPECT_EQ(EvaluatePerplexity(*model_, one, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<int32_t> bad = {5, -1, 7};
  EXPECT_EQ(EvaluatePerplexity(*model_, bad, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.max_tokens = -3;
  EXPECT_EQ(EvaluatePerplexity(*model_, *book_ids_, o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ctxmem::model
