#include "common/train/trainer.h"

#include <gtest/gtest.h>

#include "common/learned/perceiver_weights.h"
#include "nlohmann/json.hpp"
#include "tests/unit/train/train_test_util.h"

namespace ctxmem::train {
namespace {

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = testing::TinyLlama();
    ASSERT_NE(model_, nullptr);
    auto tr = TextWindows::FromBooks(testing::SyntheticBooks(3, 300, 1), 48);
    auto va = TextWindows::FromBooks(testing::SyntheticBooks(1, 300, 2), 48);
    ASSERT_TRUE(tr.ok() && va.ok());
    train_ = std::make_unique<TextWindows>(*std::move(tr));
    val_ = std::make_unique<TextWindows>(*std::move(va));
  }
  TrainOptions Options(const std::string& out) const {
    TrainOptions o;
    o.name = "tiny";
    o.loss.objective = PerceiverObjective::kNextKl;
    o.loss.chunk_size = 16;
    o.loss.memory_size = 4;
    o.loss.n_sinks = 2;
    o.n_chunks = 3;
    o.shape.query_len = 4;
    o.shape.d_query = 8;
    o.steps = 8;
    o.lr = 2e-2;
    o.warmup = 2;
    o.batch = 2;
    o.accum = 2;
    o.seed = 5;
    o.checkpoint_every = 3;
    o.eval_every = 4;
    o.val_windows = 2;
    o.out_dir = out;
    return o;
  }
  std::unique_ptr<model::Model> model_;
  std::unique_ptr<TextWindows> train_, val_;
};

TEST_F(TrainerTest, TrainsWritesItsFilesAndTheValidationLossGoesDown) {
  ctxmem::testing::TempDir dir;
  TrainOptions o = Options(dir.path());
  o.steps = 16;
  o.eval_every = 8;
  o.command = "ctxmem train (test)";
  auto r = Train(model_->transformer(), *train_, val_.get(), o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->steps, 16);
  const nlohmann::json& val = r->curves["validation"];
  ASSERT_EQ(val.size(), 3u);  // before training, step 8, step 16
  EXPECT_LT(val.back()["loss"].get<double>(), val.front()["loss"].get<double>());
  EXPECT_TRUE(val.back().contains("ppl"));
  EXPECT_TRUE(r->curves["reference"].contains("tova"));
  EXPECT_EQ(r->curves["train"].size(), 16u);
  // The trained file is a perceiver file; the manifest names its hash.
  auto w = learned::PerceiverWeights::Load(r->weights_path);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->n_layers(), 2);
  auto manifest = nlohmann::json::parse(ctxmem::testing::ReadBytes(r->manifest_path));
  EXPECT_EQ(manifest["sha256"], r->sha256);
  EXPECT_EQ(manifest["command"], "ctxmem train (test)");
  EXPECT_EQ(manifest["steps"], 16);
  EXPECT_TRUE(ctxmem::testing::FileExists(dir.File("curves.json")));
  EXPECT_TRUE(ctxmem::testing::FileExists(dir.File("checkpoint/optimizer.pt")));
}

TEST_F(TrainerTest, SameOptionsGiveTheSameWeightsBitForBit) {
  ctxmem::testing::TempDir a, b;
  TrainOptions oa = Options(a.path()), ob = Options(b.path());
  oa.loss.objective = ob.loss.objective = PerceiverObjective::kSeed;
  auto ra = Train(model_->transformer(), *train_, val_.get(), oa);
  auto rb = Train(model_->transformer(), *train_, val_.get(), ob);
  ASSERT_TRUE(ra.ok() && rb.ok()) << ra.status() << rb.status();
  EXPECT_EQ(ra->sha256, rb->sha256);
  ctxmem::testing::TempDir c;
  TrainOptions oc = Options(c.path());
  oc.loss.objective = PerceiverObjective::kSeed;
  oc.seed = 6;
  auto rc = Train(model_->transformer(), *train_, val_.get(), oc);
  ASSERT_TRUE(rc.ok());
  EXPECT_NE(rc->sha256, ra->sha256);
}

TEST_F(TrainerTest, ResumeContinuesExactlyWhereTheCheckpointStopped) {
  ctxmem::testing::TempDir whole, parts;
  auto full = Train(model_->transformer(), *train_, val_.get(), Options(whole.path()));
  ASSERT_TRUE(full.ok()) << full.status();
  TrainOptions o = Options(parts.path());
  o.stop_after_steps = 3;  // killed right after the step-3 checkpoint
  EXPECT_EQ(Train(model_->transformer(), *train_, val_.get(), o).status().code(),
            absl::StatusCode::kCancelled);
  o.stop_after_steps = 2;  // then killed at step 5, between checkpoints (last one: step 3)
  o.resume = true;
  EXPECT_EQ(Train(model_->transformer(), *train_, val_.get(), o).status().code(),
            absl::StatusCode::kCancelled);
  // Steps 4 and 5 are lost with that run: the resume starts again from checkpoint 3.
  o.stop_after_steps = 0;
  auto resumed = Train(model_->transformer(), *train_, val_.get(), o);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->sha256, full->sha256);
  EXPECT_EQ(resumed->tokens, full->tokens);
  EXPECT_EQ(resumed->curves["train"].size(), 8u);
}

TEST_F(TrainerTest, RejectsBadOptions) {
  ctxmem::testing::TempDir dir;
  TrainOptions o = Options(dir.path());
  o.method = "rcc_fuser";  // not a trainable method
  EXPECT_EQ(Train(model_->transformer(), *train_, val_.get(), o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = Options(dir.path());
  o.n_chunks = 4;  // the data has windows of 3 chunks
  EXPECT_EQ(Train(model_->transformer(), *train_, val_.get(), o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = Options(dir.path());
  o.shape.d_query = 7;  // not divisible by 2 kv heads
  EXPECT_EQ(Train(model_->transformer(), *train_, val_.get(), o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ctxmem::train
