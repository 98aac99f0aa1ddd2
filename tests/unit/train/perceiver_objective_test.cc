#include "common/train/perceiver_objective.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>
#include <torch/utils.h>

#include "common/model/kv_cache.h"
#include "common/model/transformer.h"
#include "common/train/perceiver_module.h"
#include "tests/unit/train/train_test_util.h"

namespace ctxmem::train {
namespace {

PerceiverLossOptions Tiny(PerceiverObjective objective) {
  PerceiverLossOptions o;
  o.objective = objective;
  o.chunk_size = 16;
  o.memory_size = 4;
  o.n_sinks = 2;
  return o;
}

std::shared_ptr<PerceiverModule> TinyPerceiver(const model::ModelConfig& mc, uint64_t seed) {
  torch::manual_seed(seed);
  PerceiverShape s;
  s.n_layers = mc.n_layers;
  s.d_model = mc.n_kv_heads * mc.head_dim;
  s.query_len = 4;
  s.d_query = 8;
  return *PerceiverModule::Create(s);
}

// What the straight-through objectives rely on: the forward is differentiable w.r.t. the past
// K/V it is given (common/model keeps no in-place write into a past).
TEST(PerceiverObjectiveTest, ForwardIsDifferentiableWithRespectToThePast) {
  auto m = testing::TinyLlama();
  ASSERT_NE(m, nullptr);
  const model::Transformer& t = m->transformer();
  const model::ModelConfig& c = t.config();
  model::KvCache past;
  std::vector<at::Tensor> leaves;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    at::Tensor k = at::randn({1, c.n_kv_heads, 5, c.head_dim}).requires_grad_(true);
    at::Tensor v = at::randn({1, c.n_kv_heads, 5, c.head_dim}).requires_grad_(true);
    leaves.push_back(k);
    leaves.push_back(v);
    past.k.push_back(k);
    past.v.push_back(v);
  }
  past.next_position = 5;
  at::Tensor tokens = at::arange(3, at::kLong).unsqueeze(0) + 10;
  at::Tensor positions = at::arange(5, 8, at::kLong).unsqueeze(0);
  auto out = t.Forward(tokens, positions, &past, {});
  ASSERT_TRUE(out.ok()) << out.status();
  out->logits.logsumexp(-1).sum().backward();
  for (const at::Tensor& leaf : leaves) {
    ASSERT_TRUE(leaf.grad().defined());
    EXPECT_GT(leaf.grad().abs().sum().item<double>(), 0);
  }
}

TEST(PerceiverObjectiveTest, ParsesItsNames) {
  for (const char* n : {"seed", "next_mse", "next_kl"}) {
    auto o = ParsePerceiverObjective(n);
    ASSERT_TRUE(o.ok());
    EXPECT_EQ(PerceiverObjectiveName(*o), n);
  }
  EXPECT_EQ(ParsePerceiverObjective("lm").status().code(), absl::StatusCode::kInvalidArgument);
}

// Every objective's loss goes down on fixed windows when the perceiver is trained on them.
class PerceiverObjectiveLearnsTest : public ::testing::TestWithParam<PerceiverObjective> {};

TEST_P(PerceiverObjectiveLearnsTest, LossGoesDown) {
  auto m = testing::TinyLlama();
  ASSERT_NE(m, nullptr);
  const model::Transformer& t = m->transformer();
  auto perceiver = TinyPerceiver(t.config(), 11);
  auto data = TextWindows::FromBooks(testing::SyntheticBooks(2, 400, 3), 48);
  ASSERT_TRUE(data.ok());
  const PerceiverLossOptions o = Tiny(GetParam());
  torch::optim::AdamW opt(perceiver->parameters(), torch::optim::AdamWOptions(2e-2));
  auto eval = [&] {
    double s = 0;
    for (int i = 0; i < 3; ++i) {
      auto l = PerceiverWindowLoss(t, *perceiver, data->Window(1, i), o);
      EXPECT_TRUE(l.ok()) << l.status();
      s += l.ok() ? l->total : 0;
    }
    return s / 3;
  };
  const double before = eval();
  for (int step = 0; step < 25; ++step) {
    opt.zero_grad();
    for (int i = 0; i < 3; ++i) {
      auto l = PerceiverWindowLoss(t, *perceiver, data->Window(1, i), o, 1.0 / 3);
      ASSERT_TRUE(l.ok()) << l.status();
      EXPECT_EQ(l->n_aux_terms, 2 * t.config().n_layers);
    }
    opt.step();
  }
  const double after = eval();
  EXPECT_LT(after, before) << PerceiverObjectiveName(GetParam());
}

INSTANTIATE_TEST_SUITE_P(Objectives, PerceiverObjectiveLearnsTest,
                         ::testing::Values(PerceiverObjective::kSeed, PerceiverObjective::kNextMse,
                                           PerceiverObjective::kNextKl));

TEST(PerceiverObjectiveTest, StraightThroughGivesTheLmTermAGradient) {
  auto m = testing::TinyLlama();
  ASSERT_NE(m, nullptr);
  const model::Transformer& t = m->transformer();
  auto perceiver = TinyPerceiver(t.config(), 12);
  auto data = TextWindows::FromBooks(testing::SyntheticBooks(1, 200, 4), 48);
  PerceiverLossOptions o = Tiny(PerceiverObjective::kSeed);
  o.aux_weight = 0;  // LM only: any gradient came through the straight-through factor
  perceiver->zero_grad();
  auto l = PerceiverWindowLoss(t, *perceiver, data->Window(0, 0), o, 1.0);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_GT(l->lm, 0);
  double g = 0;
  for (const at::Tensor& p : perceiver->parameters()) {
    if (p.grad().defined()) g += p.grad().abs().sum().item<double>();
  }
  EXPECT_GT(g, 0);
}

TEST(PerceiverObjectiveTest, RejectsWindowsThatAreNotWholeChunks) {
  auto m = testing::TinyLlama();
  ASSERT_NE(m, nullptr);
  auto perceiver = TinyPerceiver(m->config(), 13);
  std::vector<int32_t> ids(40, 7);
  EXPECT_EQ(PerceiverWindowLoss(m->transformer(), *perceiver, ids, Tiny(PerceiverObjective::kSeed))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  ids.resize(16);
  EXPECT_FALSE(
      PerceiverWindowLoss(m->transformer(), *perceiver, ids, Tiny(PerceiverObjective::kSeed)).ok());
}

}  // namespace
}  // namespace ctxmem::train
