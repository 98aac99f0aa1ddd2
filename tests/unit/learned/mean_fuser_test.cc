#include "common/learned/mean_fuser.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "common/compress/chunk_planner.h"
#include "common/compress/memory_state.h"
#include "common/compress/pruner_registry.h"

namespace ctxmem::learned {
namespace {

using compress::FuseInput;
using compress::LayerMemory;

// n candidates per head (2 heads, head_dim 3), src 10.. in stream order.
LayerMemory Candidates(int64_t n, const at::Tensor& k) {
  return {k, k * 2, (at::arange(n, at::kLong) + 10).unsqueeze(0).expand({2, n}).contiguous(),
          at::zeros({2, n})};
}

absl::StatusOr<std::vector<LayerMemory>> Fuse(const std::vector<LayerMemory>& c, int64_t target) {
  std::vector<LayerMemory> prefix(c.size());
  FuseInput in;
  in.target = target;
  in.candidates = &c;
  in.prefix = &prefix;
  return MeanFuser().Fuse(in);
}

TEST(MeanFuserTest, OutputsTargetEntriesWithTheGroupsNewestTokenAsSrc) {
  const std::vector<LayerMemory> c = {Candidates(10, at::randn({2, 10, 3}))};
  auto out = Fuse(c, 4);  // groups of 3, 3, 2, 2
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].k.sizes(), (std::vector<int64_t>{2, 4, 3}));
  EXPECT_EQ((*out)[0].v.sizes(), (std::vector<int64_t>{2, 4, 3}));
  EXPECT_EQ((*out)[0].len(), 4);
  EXPECT_TRUE((*out)[0].src[0].equal(at::tensor({12, 15, 17, 19}, at::kLong)));
  // Group 1 (candidates 3..5) is their mean, keys and values alike.
  EXPECT_TRUE((*out)[0].k.select(1, 1).allclose(c[0].k.narrow(1, 3, 3).mean(1)));
  EXPECT_TRUE((*out)[0].v.select(1, 1).allclose(c[0].v.narrow(1, 3, 3).mean(1)));
  EXPECT_TRUE((*out)[0].rank.eq(0).all().item<bool>());
}

TEST(MeanFuserTest, IdenticalEntriesComeBackUnchanged) {
  at::Tensor one = at::randn({2, 1, 3});
  const std::vector<LayerMemory> c = {Candidates(9, one.expand({2, 9, 3}).contiguous())};
  auto out = Fuse(c, 3);
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE((*out)[0].k.allclose(one.expand({2, 3, 3}), 1e-6, 1e-7));
  EXPECT_TRUE((*out)[0].v.allclose(one.expand({2, 3, 3}) * 2, 1e-6, 1e-7));
}

TEST(MeanFuserTest, GroupsCoverEveryCandidateOnceWithSizesDifferingByAtMostOne) {
  for (int64_t n : {5, 12, 100, 640}) {
    for (int64_t t : std::vector<int64_t>{1, 2, 4, 7, n - 1}) {
      if (t >= n) continue;  // Fuse() is only called with fewer targets than candidates
      at::Tensor g = GroupOfCandidate(n, t, at::kCPU);
      at::Tensor counts = at::bincount(g, {}, t);
      EXPECT_EQ(counts.size(0), t);
      EXPECT_LE((counts.max() - counts.min()).item<int64_t>(), 1) << n << " " << t;
      EXPECT_TRUE((g.slice(0, 1) >= g.slice(0, 0, n - 1)).all().item<bool>());  // contiguous
      // GroupEnds names each group's last candidate.
      at::Tensor ends = compress::GroupEnds(n, t, at::kCPU);
      EXPECT_TRUE(g.index_select(0, ends).equal(at::arange(t, at::kLong)));
      EXPECT_EQ(ends[t - 1].item<int64_t>(), n - 1);
    }
  }
}

TEST(MeanFuserTest, RejectsTargetsThatNeedNoFusionAndBadShapes) {
  const std::vector<LayerMemory> c = {Candidates(6, at::randn({2, 6, 3}))};
  EXPECT_EQ(Fuse(c, 6).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Fuse(c, 0).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<LayerMemory> two = {c[0], Candidates(5, at::randn({2, 5, 3}))};
  EXPECT_EQ(Fuse(two, 3).status().code(), absl::StatusCode::kInvalidArgument);
  // A fuser does not select.
  compress::PruneInput p;
  p.n_kv_heads = 2;
  p.n_chunk = 6;
  p.target = 2;
  p.src = c[0].src;
  p.keys = c[0].k;
  EXPECT_FALSE(MeanFuser().Select(p).ok());
}

// Through MemoryState: every memory type keeps its counts, src stays increasing, sinks are
// the stream's first tokens, and the memory says it is fused.
class MeanFuserMemoryTest : public ::testing::TestWithParam<compress::MemoryType> {};

TEST_P(MeanFuserMemoryTest, MemoryTypesKeepTheirSizes) {
  compress::CompressionConfig config;
  config.pruner = "mean_fuser";
  config.memory_type = GetParam();
  config.chunk_size = 16;
  config.memory_size = 6;
  config.n_sink_tokens = 2;
  config.double_compress_size = 3;
  ASSERT_TRUE(config.Validate().ok());
  auto plan = compress::ChunkPlan::Create(config, 64);
  ASSERT_TRUE(plan.ok());
  auto pruner = compress::PrunerRegistry::Global().Create(config);
  ASSERT_TRUE(pruner.ok()) << pruner.status();
  auto state = compress::MemoryState::Create(config, *plan, **pruner, 2);
  ASSERT_TRUE(state.ok());
  for (int64_t step = 0; step < 4; ++step) {
    std::vector<compress::ChunkLayer> chunk(2);
    for (auto& l : chunk) {
      l.k = at::randn({2, 16, 3});
      l.v = at::randn({2, 16, 3});
    }
    ASSERT_TRUE(state->Append(step, step == 3, chunk).ok());
    const compress::Memory& m = state->visible();
    EXPECT_TRUE(m.fused);
    EXPECT_EQ(m.n_sinks, 2);
    const int64_t non_sink = m.len() - 2;
    EXPECT_LE(non_sink, config.memory_type == compress::MemoryType::kDoubleCompress ? 3 : 6);
    for (const LayerMemory& l : m.layers) {
      EXPECT_EQ(l.k.size(1), m.len());
      EXPECT_TRUE(l.src.narrow(1, 0, 2).equal(at::arange(2, at::kLong).expand({2, 2})));
      EXPECT_TRUE((l.src.slice(1, 1) > l.src.slice(1, 0, m.len() - 1)).all().item<bool>());
      EXPECT_LT(l.src.max().item<int64_t>(), m.n_tokens);
    }
  }
  if (GetParam() == compress::MemoryType::kFm) {
    EXPECT_EQ(state->visible().len(), 8);
  }
  if (GetParam() == compress::MemoryType::kDoubleCompress) {
    EXPECT_EQ(state->visible().len(), 5);
    EXPECT_EQ(state->hidden_len(), 6);
  }
}

INSTANTIATE_TEST_SUITE_P(Types, MeanFuserMemoryTest,
                         ::testing::Values(compress::MemoryType::kFm, compress::MemoryType::kIm,
                                           compress::MemoryType::kFixedIncremental,
                                           compress::MemoryType::kDoubleCompress));

}  // namespace
}  // namespace ctxmem::learned
