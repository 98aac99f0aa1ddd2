#include "common/model/sampler.h"

#include <ATen/ATen.h>

#include <cmath>
#include <map>
#include <vector>

#include "gtest/gtest.h"

namespace ctxmem::model {
namespace {

std::vector<float> LogOf(const std::vector<double>& probs) {
  std::vector<float> out;
  for (double p : probs) out.push_back(static_cast<float>(std::log(p)));
  return out;
}

Sampler MakeSampler(const SamplingOptions& options) {
  auto s = Sampler::Create(options);
  EXPECT_TRUE(s.ok()) << s.status();
  return std::move(s).value();
}

// Frequencies of `n_draws` draws.
std::map<int32_t, double> Frequencies(Sampler& sampler, const std::vector<float>& logits,
                                      int n_draws) {
  std::map<int32_t, double> freq;
  for (int i = 0; i < n_draws; ++i) {
    auto id = sampler.Sample(absl::MakeConstSpan(logits), {});
    EXPECT_TRUE(id.ok()) << id.status();
    freq[*id] += 1.0 / n_draws;
  }
  return freq;
}

TEST(SamplingOptionsTest, ValidateRejectsOutOfRange) {
  EXPECT_TRUE(SamplingOptions{}.Validate().ok());
  SamplingOptions o;
  o.temperature = -0.1f;
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  o = {};
  o.top_k = -1;
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  o = {};
  o.top_p = 0.0f;
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  o.top_p = 1.5f;
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  o = {};
  o.repetition_penalty = 0.0f;
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  o.repetition_penalty = NAN;
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(Sampler::Create(o).ok());
}

TEST(SamplerTest, GreedyPicksFirstArgmax) {
  Sampler s = MakeSampler({});
  const std::vector<float> logits = {1.0f, 5.0f, 3.0f, 5.0f, -2.0f};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(*s.Sample(absl::MakeConstSpan(logits), {}), 1);
}

TEST(SamplerTest, TopK1IsGreedy) {
  SamplingOptions o;
  o.temperature = 1.5f;
  o.top_k = 1;
  o.seed = 3;
  Sampler s = MakeSampler(o);
  at::manual_seed(0);
  for (int i = 0; i < 50; ++i) {
    at::Tensor row = at::randn({1000});
    const int32_t expected = static_cast<int32_t>(row.argmax().item<int64_t>());
    EXPECT_EQ(*s.Sample(row, {}), expected);
  }
}

TEST(SamplerTest, TopKKeepsOnlyTheBestK) {
  SamplingOptions o;
  o.temperature = 1.0f;
  o.top_k = 2;
  Sampler s = MakeSampler(o);
  const auto freq = Frequencies(s, LogOf({0.1, 0.4, 0.2, 0.3}), 20000);
  ASSERT_EQ(freq.size(), 2u);
  EXPECT_NEAR(freq.at(1), 0.4 / 0.7, 0.02);
  EXPECT_NEAR(freq.at(3), 0.3 / 0.7, 0.02);
}

TEST(SamplerTest, TopPKeepsTheNucleus) {
  SamplingOptions o;
  o.temperature = 1.0f;
  o.top_p = 0.6f;  // 0.5 < 0.6, 0.5 + 0.3 >= 0.6: ids {0, 1}
  Sampler s = MakeSampler(o);
  const std::vector<float> logits = LogOf({0.5, 0.3, 0.15, 0.05});
  auto freq = Frequencies(s, logits, 20000);
  ASSERT_EQ(freq.size(), 2u);
  EXPECT_NEAR(freq.at(0), 0.5 / 0.8, 0.02);
  EXPECT_NEAR(freq.at(1), 0.3 / 0.8, 0.02);

  o.top_p = 0.4f;  // the top id alone already holds 0.5
  Sampler s1 = MakeSampler(o);
  freq = Frequencies(s1, logits, 1000);
  ASSERT_EQ(freq.size(), 1u);
  EXPECT_EQ(freq.begin()->first, 0);
}

TEST(SamplerTest, TopPOnALargeFlatVocabularyKeepsHalf) {
  // 1000 equal logits, top_p 0.5: exactly the first 500 ids (ties broken by id) survive; the
  // sorted prefix has to grow several times to reach that mass.
  SamplingOptions o;
  o.temperature = 1.0f;
  o.top_p = 0.5f;
  Sampler s = MakeSampler(o);
  const std::vector<float> logits(1000, 0.25f);
  const auto freq = Frequencies(s, logits, 5000);
  EXPECT_GE(freq.begin()->first, 0);
  EXPECT_LT(freq.rbegin()->first, 500);
  EXPECT_GT(freq.size(), 450u);
}

TEST(SamplerTest, RepetitionPenaltyMatchesHandComputed) {
  std::vector<float> scores = {2.0f, -1.0f, 0.5f, 3.0f, -0.25f};
  // Repeated ids are penalised once (HF gathers, then scatters the same value).
  ASSERT_TRUE(ApplyRepetitionPenalty(2.0f, {0, 1, 1, 4, 0}, absl::MakeSpan(scores)).ok());
  EXPECT_FLOAT_EQ(scores[0], 1.0f);
  EXPECT_FLOAT_EQ(scores[1], -2.0f);
  EXPECT_FLOAT_EQ(scores[2], 0.5f);
  EXPECT_FLOAT_EQ(scores[3], 3.0f);
  EXPECT_FLOAT_EQ(scores[4], -0.5f);
  EXPECT_EQ(ApplyRepetitionPenalty(2.0f, {5}, absl::MakeSpan(scores)).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SamplerTest, RepetitionPenaltyAppliesBeforeGreedy) {
  SamplingOptions o;
  o.repetition_penalty = 2.0f;
  Sampler s = MakeSampler(o);
  // 3 / 2 = 1.5 < 2: the seen id loses.
  const std::vector<float> positive = {3.0f, 2.0f, -1.0f};
  EXPECT_EQ(*s.Sample(absl::MakeConstSpan(positive), {0}), 1);
  EXPECT_EQ(*s.Sample(absl::MakeConstSpan(positive), {}), 0);
  // -1 * 2 = -2 < -1.5: a negative logit gets more negative.
  const std::vector<float> negative = {-1.0f, -1.5f};
  EXPECT_EQ(*s.Sample(absl::MakeConstSpan(negative), {0}), 1);
  // Penalty below 1 favours repeats: 1.0 / 0.5 = 2 > 1.5.
  o.repetition_penalty = 0.5f;
  Sampler boost = MakeSampler(o);
  const std::vector<float> close = {1.0f, 1.5f};
  EXPECT_EQ(*boost.Sample(absl::MakeConstSpan(close), {0}), 0);
}

TEST(SamplerTest, SameSeedSameSequence) {
  SamplingOptions o;
  o.temperature = 0.9f;
  o.top_k = 50;
  o.top_p = 0.95f;
  o.seed = 1234;
  Sampler a = MakeSampler(o);
  Sampler b = MakeSampler(o);
  o.seed = 1235;
  Sampler c = MakeSampler(o);
  at::manual_seed(1);
  int n_differ = 0;
  for (int i = 0; i < 200; ++i) {
    at::Tensor row = at::randn({500}) * 2;
    const int32_t ida = *a.Sample(row, {});
    EXPECT_EQ(ida, *b.Sample(row, {}));
    n_differ += ida != *c.Sample(row, {});
  }
  EXPECT_GT(n_differ, 20);
}

TEST(SamplerTest, DrawsFollowTheSoftmax) {
  SamplingOptions o;
  o.temperature = 1.0f;
  o.seed = 7;
  Sampler s = MakeSampler(o);
  const std::vector<float> logits = LogOf({0.1, 0.2, 0.3, 0.4});
  auto freq = Frequencies(s, logits, 40000);
  EXPECT_NEAR(freq[0], 0.1, 0.01);
  EXPECT_NEAR(freq[1], 0.2, 0.01);
  EXPECT_NEAR(freq[2], 0.3, 0.01);
  EXPECT_NEAR(freq[3], 0.4, 0.01);

  // Temperature 0.5 squares the probabilities: {1, 4, 9, 16} / 30.
  o.temperature = 0.5f;
  Sampler cold = MakeSampler(o);
  freq = Frequencies(cold, logits, 40000);
  EXPECT_NEAR(freq[0], 1.0 / 30, 0.01);
  EXPECT_NEAR(freq[1], 4.0 / 30, 0.01);
  EXPECT_NEAR(freq[2], 9.0 / 30, 0.01);
  EXPECT_NEAR(freq[3], 16.0 / 30, 0.01);
}

TEST(SamplerTest, MaskedIdsAreNeverDrawn) {
  SamplingOptions o;
  o.temperature = 1.0f;
  Sampler s = MakeSampler(o);
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> logits = {-inf, 0.0f, -inf, 0.0f};
  const auto freq = Frequencies(s, logits, 2000);
  EXPECT_EQ(freq.count(0), 0u);
  EXPECT_EQ(freq.count(2), 0u);
}

TEST(SamplerTest, TensorAndSpanAgree) {
  SamplingOptions o;
  o.temperature = 1.0f;
  o.seed = 99;
  Sampler a = MakeSampler(o);
  Sampler b = MakeSampler(o);
  at::manual_seed(2);
  at::Tensor row = at::randn({1, 300});  // [1, n_vocab] is accepted too
  std::vector<float> values(row.data_ptr<float>(), row.data_ptr<float>() + 300);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(*a.Sample(row.to(at::kDouble), {}), *b.Sample(absl::MakeConstSpan(values), {}));
  }
}

TEST(SamplerTest, RejectsBadInput) {
  Sampler s = MakeSampler({});
  EXPECT_EQ(s.Sample(at::zeros({2, 3}), {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Sample(at::Tensor(), {}).status().code(), absl::StatusCode::kInvalidArgument);
  const std::vector<float> empty;
  EXPECT_EQ(s.Sample(absl::MakeConstSpan(empty), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<float> nan = {0.0f, NAN};
  EXPECT_EQ(s.Sample(absl::MakeConstSpan(nan), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<float> first_nan = {NAN, 5.0f};  // NaN where the greedy scan starts
  EXPECT_EQ(s.Sample(absl::MakeConstSpan(first_nan), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<float> inf = {0.0f, INFINITY};
  EXPECT_EQ(s.Sample(absl::MakeConstSpan(inf), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Greedy picks the first maximum (torch.argmax); -inf everywhere is valid (id 0).
  const std::vector<float> tie = {1.0f, 3.0f, 3.0f, -INFINITY};
  EXPECT_EQ(*s.Sample(absl::MakeConstSpan(tie), {}), 1);
  const std::vector<float> all_neg_inf = {-INFINITY, -INFINITY};
  EXPECT_EQ(*s.Sample(absl::MakeConstSpan(all_neg_inf), {}), 0);
  SamplingOptions o;
  o.repetition_penalty = 1.3f;
  Sampler p = MakeSampler(o);
  const std::vector<float> ok = {0.0f, 1.0f};
  EXPECT_EQ(p.Sample(absl::MakeConstSpan(ok), {7}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ctxmem::model
