#include "common/train/rcc_trainer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "common/learned/learned_method.h"
#include "common/learned/rcc_bridge.h"
#include "common/train/rcc_objective.h"
#include "nlohmann/json.hpp"
#include "tests/unit/train/train_test_util.h"

namespace ctxmem::train {
namespace {

constexpr int64_t kWindow = 32, kCont = 16;

class RccTrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = testing::TinyLlama();
    ASSERT_NE(model_, nullptr);
    auto tr = TextWindows::FromBooks(testing::SyntheticBooks(3, 300, 1), kWindow + kCont);
    auto va = TextWindows::FromBooks(testing::SyntheticBooks(1, 300, 2), kWindow + kCont);
    ASSERT_TRUE(tr.ok() && va.ok());
    train_ = std::make_unique<TextWindows>(*std::move(tr));
    val_ = std::make_unique<TextWindows>(*std::move(va));
  }
  RccTrainOptions Options(const std::string& out) const {
    RccTrainOptions o;
    o.name = "tiny_rcc";
    o.shape = {learned::RccVariant::kResidual, 0, 0, 4, kWindow, 4};
    o.loss.hint = 4;
    o.loss.span = 16;
    o.loss.continuation = kCont;
    o.reconstruction = 0.5;
    o.continuation = 0.3;
    o.instruction = 0.2;
    o.steps = 6;
    o.lr = 1e-2;
    o.warmup = 1;
    o.accum = 2;
    o.seed = 3;
    o.checkpoint_every = 2;
    o.eval_every = 3;
    o.val_windows = 2;
    o.out_dir = out;
    return o;
  }
  std::unique_ptr<model::Model> model_;
  std::unique_ptr<TextWindows> train_, val_;
};

// The zero residual bridge's losses are the stride bridge's, and its gradient is not zero (so
// training can move off the stride baseline).
TEST_F(RccTrainerTest, ZeroBridgeLossEqualsStrideAndHasAGradient) {
  const auto& tf = model_->transformer();
  const auto& c = tf.config();
  auto zero = learned::RccBridge::Create(
      {learned::RccVariant::kResidual, c.n_layers, c.hidden, 0, kWindow, 4});
  ASSERT_TRUE(zero.ok());
  for (at::Tensor p : zero->parameters()) p.requires_grad_(true);
  const auto stride = learned::RccBridge::Stride(c.n_layers, c.hidden);
  RccLossOptions lo;
  lo.window = kWindow;
  lo.rate = 4;
  lo.hint = 4;
  lo.span = 16;
  lo.continuation = kCont;
  std::vector<int32_t> w = train_->Window(1, 0);
  for (RccTask task : {RccTask::kReconstruction, RccTask::kContinuation, RccTask::kInstruction}) {
    auto a = RccLoss(tf, stride, w, lo, task, 5);
    auto b = RccLoss(tf, *zero, w, lo, task, 5, 1.0);
    ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
    EXPECT_NEAR(a->loss, b->loss, 1e-5 * std::abs(a->loss)) << RccTaskName(task);
    EXPECT_EQ(a->n_scored, task == RccTask::kContinuation ? kCont - 1 : 16 - 4);
  }
  double g = 0;
  for (const at::Tensor& p : zero->parameters()) g += p.grad().abs().sum().item<double>();
  EXPECT_GT(g, 0);
  EXPECT_EQ(RccLoss(tf, stride, std::vector<int32_t>(10, 1), lo, RccTask::kReconstruction, 0)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RccTrainerTest, TrainsWritesALoadableBridgeAndResumesExactly) {
  ctxmem::testing::TempDir a, b;
  RccTrainOptions o = Options(a.path());
  auto full = TrainRcc(model_->transformer(), *train_, val_.get(), o);
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->curves["validation"].size(), 3u);  // step 0, 3, 6
  EXPECT_TRUE(full->curves.contains("reference"));
  auto loaded = learned::RccBridge::Load(full->weights_path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->shape().window, kWindow);
  EXPECT_TRUE(learned::RegisterLearned("tiny_rcc_trained", full->weights_path).ok());

  RccTrainOptions p = Options(b.path());
  p.save_bf16 = o.save_bf16;
  p.stop_after_steps = 3;
  auto part = TrainRcc(model_->transformer(), *train_, val_.get(), p);
  EXPECT_EQ(part.status().code(), absl::StatusCode::kCancelled);
  p.stop_after_steps = 0;
  p.resume = true;
  auto resumed = TrainRcc(model_->transformer(), *train_, val_.get(), p);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->sha256, full->sha256);  // bit for bit
  EXPECT_EQ(resumed->curves["train"].size(), 6u);
}

}  // namespace
}  // namespace ctxmem::train
