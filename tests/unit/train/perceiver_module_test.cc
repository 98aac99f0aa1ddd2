#include "common/train/perceiver_module.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/utils.h>

#include "common/compress/pruner.h"
#include "common/learned/perceiver_pruner.h"
#include "tests/unit/test_files.h"

namespace ctxmem::train {
namespace {

PerceiverShape Shape() {
  PerceiverShape s;
  s.n_layers = 2;
  s.query_len = 3;
  s.d_query = 8;
  s.d_model = 2 * 5;  // 2 kv heads x head_dim 5
  s.temperature = 0.7;
  return s;
}

// The trained module must rank exactly as the inference pruner does with its saved weights.
TEST(PerceiverModuleTest, MeanAttentionIsWhatThePrunerRanksWith) {
  torch::manual_seed(3);
  auto m = PerceiverModule::Create(Shape());
  ASSERT_TRUE(m.ok()) << m.status();
  ctxmem::testing::TempDir dir;
  const std::string path = dir.File("p.safetensors");
  ASSERT_TRUE((*m)->Save(path, {{"note", "test"}}).ok());
  auto weights = learned::PerceiverWeights::Load(path);
  ASSERT_TRUE(weights.ok()) << weights.status();
  EXPECT_DOUBLE_EQ(weights->temperature(), 0.7);
  auto pruner = learned::PerceiverPruner::Create(
      std::make_shared<const learned::PerceiverWeights>(*std::move(weights)));
  ASSERT_TRUE(pruner.ok());
  compress::PruneInput in;
  in.layer = 1;
  in.n_kv_heads = 2;
  in.n_memory = 2;
  in.n_chunk = 5;
  in.target = 2;  // fewer than query_len: the first 2 queries, as the pruner does
  in.keys = at::randn({2, 7, 5});
  in.memory_rank = at::zeros({2, 2});
  in.src = at::arange(7, at::kLong).unsqueeze(0).expand({2, 7}).contiguous();
  auto sel = (*pruner)->Select(in);
  ASSERT_TRUE(sel.ok()) << sel.status();
  at::Tensor p = (*m)->MeanAttention(1, in.keys, in.target);  // [2, 7]
  EXPECT_TRUE(at::allclose(p.sum(-1), at::ones({2})));
  // Ranks of the kept entries are the module's mean attention at those indices.
  EXPECT_TRUE(at::allclose(sel->rank, p.gather(1, sel->indices), 1e-6, 1e-7));
  at::Tensor top = std::get<0>(std::get<1>(p.topk(2, 1)).sort(1));
  EXPECT_TRUE(at::equal(top, sel->indices));
}

TEST(PerceiverModuleTest, RoundTripsThroughTheFileFormat) {
  torch::manual_seed(4);
  auto m = PerceiverModule::Create(Shape());
  ASSERT_TRUE(m.ok());
  ctxmem::testing::TempDir dir;
  ASSERT_TRUE((*m)->Save(dir.File("a.safetensors")).ok());
  auto w = learned::PerceiverWeights::Load(dir.File("a.safetensors"));
  ASSERT_TRUE(w.ok());
  auto back = PerceiverModule::FromWeights(*w);
  ASSERT_TRUE(back.ok());
  ASSERT_TRUE((*back)->Save(dir.File("b.safetensors")).ok());
  EXPECT_EQ(ctxmem::testing::ReadBytes(dir.File("a.safetensors")),
            ctxmem::testing::ReadBytes(dir.File("b.safetensors")));
}

TEST(PerceiverModuleTest, GradientsReachEveryParameter) {
  torch::manual_seed(5);
  auto m = PerceiverModule::Create(Shape());
  ASSERT_TRUE(m.ok());
  at::Tensor p = (*m)->MeanAttention(0, at::randn({2, 6, 5}), 8);
  (p * at::arange(6, at::kFloat)).sum().backward();
  int with_grad = 0;
  for (const auto& item : (*m)->named_parameters()) {
    const std::string& name = item.key();
    const at::Tensor& t = item.value();
    if (name.rfind("layers_0_", 0) == 0) {
      ASSERT_TRUE(t.grad().defined()) << name;
      EXPECT_GT(t.grad().abs().sum().item<double>(), 0) << name;
      ++with_grad;
    }
  }
  EXPECT_EQ(with_grad, 3);
}

TEST(PerceiverModuleTest, RejectsBadShapes) {
  PerceiverShape s = Shape();
  s.n_layers = 0;
  EXPECT_EQ(PerceiverModule::Create(s).status().code(), absl::StatusCode::kInvalidArgument);
  s = Shape();
  s.temperature = 0;
  EXPECT_FALSE(PerceiverModule::Create(s).ok());
}

}  // namespace
}  // namespace ctxmem::train
