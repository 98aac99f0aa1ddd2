// The fusers' trainable modules (spec §7) against their inference fusers, their loss going down
// on the tiny random llama, and Train() on them (deterministic, files that the registry runs).
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>
#include <torch/utils.h>

#include "common/compress/compression_config.h"
#include "common/compress/pruner_registry.h"
#include "common/learned/llm_fuser.h"
#include "common/learned/perceiver_fuser.h"
#include "common/model/transformer.h"
#include "common/train/fuser_objective.h"
#include "common/train/llm_fuser_module.h"
#include "common/train/perceiver_fuser_module.h"
#include "common/train/train_method.h"
#include "common/train/trainer.h"
#include "nlohmann/json.hpp"
#include "tests/unit/train/train_test_util.h"

namespace ctxmem::train {
namespace {

learned::PerceiverFuserShape TinyShape(const model::ModelConfig& mc) {
  learned::PerceiverFuserShape s;
  s.n_layers = mc.n_layers;
  s.query_len = 2;
  s.d_query = 8;
  s.d_model = mc.n_kv_heads * mc.head_dim;
  s.head_dim = mc.head_dim;
  return s;
}

// Random candidates (and sink prefixes) of every layer of the tiny model.
struct Candidates {
  std::vector<compress::LayerMemory> cand, prefix;
  std::vector<at::Tensor> k, v, pk, pv;
};
Candidates RandomCandidates(const model::ModelConfig& mc, int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  Candidates c;
  for (int64_t l = 0; l < mc.n_layers; ++l) {
    c.k.push_back(at::randn({mc.n_kv_heads, n, mc.head_dim}) * 3);
    c.v.push_back(at::randn({mc.n_kv_heads, n, mc.head_dim}));
    c.pk.push_back(at::randn({mc.n_kv_heads, 2, mc.head_dim}));
    c.pv.push_back(at::randn({mc.n_kv_heads, 2, mc.head_dim}));
    at::Tensor src = (at::arange(n, at::kLong) + 2).unsqueeze(0).expand({mc.n_kv_heads, n});
    c.cand.push_back({c.k[l], c.v[l], src.contiguous(), at::zeros({mc.n_kv_heads, n})});
    c.prefix.push_back({c.pk[l], c.pv[l],
                        at::arange(2, at::kLong).unsqueeze(0).expand({mc.n_kv_heads, 2}),
                        at::zeros({mc.n_kv_heads, 2})});
  }
  return c;
}

class FuserModuleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = testing::TinyLlama();
    ASSERT_NE(model_, nullptr);
  }
  std::unique_ptr<model::Model> model_;
};

TEST_F(FuserModuleTest, PerceiverFuserModuleFusesAsTheInferenceFuserLoadingItsFile) {
  const model::ModelConfig& mc = model_->config();
  torch::manual_seed(3);
  auto m = PerceiverFuserModule::Create(TinyShape(mc));
  ASSERT_TRUE(m.ok()) << m.status();
  {  // a trained-looking module: every parameter moved off its init
    torch::NoGradGuard g;
    for (at::Tensor& p : (*m)->parameters()) p.add_(at::randn(p.sizes()) * 0.1);
  }
  ctxmem::testing::TempDir dir;
  ASSERT_TRUE((*m)->Save(dir.File("pf.safetensors")).ok());
  auto w = learned::PerceiverFuserWeights::Load(dir.File("pf.safetensors"));
  ASSERT_TRUE(w.ok()) << w.status();
  learned::PerceiverFuser fuser(std::make_shared<const learned::PerceiverFuserWeights>(*w));
  Candidates c = RandomCandidates(mc, 20, 4);
  compress::FuseInput in;
  in.target = 6;
  in.candidates = &c.cand;
  in.prefix = &c.prefix;
  auto got = fuser.Fuse(in);
  ASSERT_TRUE(got.ok()) << got.status();
  torch::NoGradGuard g;
  auto want = (*m)->Fuse(c.k, c.v, 6);
  for (int64_t l = 0; l < mc.n_layers; ++l) {
    EXPECT_TRUE((*got)[l].k.allclose(want[l].first, 1e-5, 1e-6));
    EXPECT_TRUE((*got)[l].v.allclose(want[l].second, 1e-5, 1e-6));
    EXPECT_EQ((*got)[l].len(), 6);
    EXPECT_TRUE(((*got)[l].src.slice(1, 1) > (*got)[l].src.slice(1, 0, 5)).all().item<bool>());
  }
}

TEST_F(FuserModuleTest, UntrainedPerceiverFuserWithOneEntryPerAnchorIsAPruner) {
  const model::ModelConfig& mc = model_->config();
  learned::PerceiverFuserShape s = TinyShape(mc);
  s.fuse_k = 1;  // the anchor alone; pre-norm FFN output is zero at init
  auto m = PerceiverFuserModule::Create(s);
  ASSERT_TRUE(m.ok());
  Candidates c = RandomCandidates(mc, 12, 5);
  torch::NoGradGuard g;
  auto out = (*m)->Fuse(c.k, c.v, 4);
  for (int64_t l = 0; l < mc.n_layers; ++l) {
    // Every fused key is one of the candidates' keys of its head, unchanged.
    at::Tensor d = at::cdist(out[l].first, c.k[l]);  // [h, 4, 12]
    EXPECT_LT(std::get<0>(d.min(-1)).max().item<double>(), 1e-5);
  }
}

TEST_F(FuserModuleTest, LlmFuserModuleFusesAsTheInferenceFuserLoadingItsFile) {
  const model::Transformer& t = model_->transformer();
  const model::ModelConfig& mc = t.config();
  torch::manual_seed(6);
  LlmFuserShape s;
  s.query_len = 3;
  s.rank = 4;
  s.alpha = 8;
  auto m = LlmFuserModule::Create(t, s);
  ASSERT_TRUE(m.ok()) << m.status();
  {
    torch::NoGradGuard g;
    for (at::Tensor& p : (*m)->parameters()) p.add_(at::randn(p.sizes()) * 0.05);
  }
  ctxmem::testing::TempDir dir;
  ASSERT_TRUE((*m)->Save(dir.File("lf.safetensors")).ok());
  auto w = learned::LlmFuserWeights::Load(dir.File("lf.safetensors"));
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->rank(), 4);
  learned::LlmFuser fuser(std::make_shared<const learned::LlmFuserWeights>(*w));
  Candidates c = RandomCandidates(mc, 10, 7);
  compress::FuseInput in;
  in.target = 5;
  in.candidates = &c.cand;
  in.prefix = &c.prefix;
  EXPECT_FALSE(fuser.Fuse(in).ok());  // runs the model: needs it
  in.model = &t;
  auto got = fuser.Fuse(in);
  ASSERT_TRUE(got.ok()) << got.status();
  std::vector<at::Tensor> ak, av;
  for (int64_t l = 0; l < mc.n_layers; ++l) {
    ak.push_back(at::cat({c.pk[l], c.k[l]}, 1));
    av.push_back(at::cat({c.pv[l], c.v[l]}, 1));
  }
  torch::NoGradGuard g;
  auto want = learned::LlmFuseForward(t, (*m)->tensors(), ak, av, 5);
  ASSERT_TRUE(want.ok());
  for (int64_t l = 0; l < mc.n_layers; ++l) {
    EXPECT_TRUE((*got)[l].k.allclose((*want)[l].first, 1e-5, 1e-6));
    EXPECT_TRUE((*got)[l].v.allclose((*want)[l].second, 1e-5, 1e-6));
    EXPECT_EQ((*got)[l].k.sizes(), (std::vector<int64_t>{mc.n_kv_heads, 5, mc.head_dim}));
  }
  // Another model shape is refused with the numbers.
  learned::LlmFuserTensors bad = w->tensors();
  bad.lora_a.pop_back();
  bad.lora_b.pop_back();
  auto f2 = learned::LlmFuserWeights::FromFile(learned::LlmFuserWeights::ToFile(bad, 8), "x");
  ASSERT_TRUE(f2.ok());
  EXPECT_EQ(f2->CheckFits(t).code(), absl::StatusCode::kInvalidArgument);
}

// Each learned fuser's LM loss goes down on fixed windows within a few AdamW steps.
class FuserLearnsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FuserLearnsTest, LossGoesDown) {
  auto model = testing::TinyLlama();
  ASSERT_NE(model, nullptr);
  const model::Transformer& t = model->transformer();
  TrainOptions o;
  o.method = GetParam();
  o.loss.chunk_size = 16;
  o.loss.memory_size = 4;
  o.loss.n_sinks = 2;
  o.shape.query_len = 2;
  o.shape.d_query = 8;
  o.lora_rank = 4;
  torch::manual_seed(21);
  auto method = MakeTrainMethod(o, t, "");
  ASSERT_TRUE(method.ok()) << method.status();
  auto data = TextWindows::FromBooks(testing::SyntheticBooks(2, 400, 3), 48);
  ASSERT_TRUE(data.ok());
  torch::optim::AdamW opt((*method)->module().parameters(), torch::optim::AdamWOptions(2e-2));
  auto eval = [&] {
    double s = 0;
    for (int i = 0; i < 3; ++i) {
      auto l = (*method)->Loss(t, data->Window(1, i), 0);
      EXPECT_TRUE(l.ok()) << l.status();
      s += l.ok() ? l->total : 0;
    }
    return s / 3;
  };
  const double before = eval();
  for (int step = 0; step < 15; ++step) {
    opt.zero_grad();
    for (int i = 0; i < 3; ++i) {
      auto l = (*method)->Loss(t, data->Window(1, i), 1.0 / 3);
      ASSERT_TRUE(l.ok()) << l.status();
      EXPECT_EQ(l->n_lm_tokens, 2 * 15);
    }
    opt.step();
  }
  const double after = eval();
  EXPECT_LT(after, before) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Fusers, FuserLearnsTest,
                         ::testing::Values("perceiver_fuser", "llm_fuser"));

TEST(FuserTrainTest, SameOptionsGiveTheSameWeightsAndTheFileRunsInTheRegistry) {
  auto model = testing::TinyLlama();
  ASSERT_NE(model, nullptr);
  auto tr = TextWindows::FromBooks(testing::SyntheticBooks(3, 300, 1), 32);
  auto va = TextWindows::FromBooks(testing::SyntheticBooks(1, 300, 2), 32);
  ASSERT_TRUE(tr.ok() && va.ok());
  for (const char* method : {"perceiver_fuser", "llm_fuser"}) {
    auto options = [&](const std::string& out) {
      TrainOptions o;
      o.method = method;
      o.name = "tiny";
      o.loss.chunk_size = 16;
      o.loss.memory_size = 4;
      o.loss.n_sinks = 2;
      o.n_chunks = 2;
      o.shape.query_len = 2;
      o.shape.d_query = 8;
      o.lora_rank = 4;
      o.steps = 3;
      o.warmup = 1;
      o.lr = 1e-2;
      o.seed = 9;
      o.eval_every = 3;
      o.checkpoint_every = 2;
      o.val_windows = 1;
      o.out_dir = out;
      return o;
    };
    ctxmem::testing::TempDir a, b;
    auto ra = Train(model->transformer(), *tr, &*va, options(a.path()));
    auto rb = Train(model->transformer(), *tr, &*va, options(b.path()));
    ASSERT_TRUE(ra.ok() && rb.ok()) << ra.status() << rb.status();
    EXPECT_EQ(ra->sha256, rb->sha256) << method;
    EXPECT_TRUE(ra->curves["reference"].contains("mean_fuser"));
    EXPECT_TRUE(ra->curves["validation"].back().contains("ppl"));
    auto manifest = nlohmann::json::parse(ctxmem::testing::ReadBytes(ra->manifest_path));
    EXPECT_EQ(manifest["method"], method);
    EXPECT_EQ(manifest["objective"], "lm");
    compress::CompressionConfig c;
    c.pruner = method;
    c.perceiver_weights = ra->weights_path;
    ASSERT_TRUE(c.Validate().ok());
    auto fuser = compress::PrunerRegistry::Global().Create(c);
    ASSERT_TRUE(fuser.ok()) << fuser.status();
    EXPECT_EQ((*fuser)->carry(), compress::MemoryCarry::kFused);
    c.perceiver_weights.clear();
    EXPECT_EQ(compress::PrunerRegistry::Global().Create(c).status().code(),
              absl::StatusCode::kFailedPrecondition);
  }
}

}  // namespace
}  // namespace ctxmem::train
