#include "common/compress/memory_state.h"

#include <ATen/ops/arange.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/full.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/rand.h>
#include <ATen/ops/zeros.h>

#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "common/compress/pruner_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/compress/test_util.h"

namespace ctxmem::compress {
namespace {

using testing::Rows;

constexpr int64_t kKv = 2;   // kv heads
constexpr int64_t kDim = 3;  // head_dim
constexpr int64_t kLayers = 2;

// A chunk of stream tokens [first, first + q) whose keys encode (stream index + 1000 * head)
// and values (stream index + 1000 * head + 100000 * layer), so gathers can be checked.
std::vector<ChunkLayer> MakeChunk(int64_t first, int64_t q, int64_t past, bool scores) {
  std::vector<ChunkLayer> layers(kLayers);
  for (int64_t l = 0; l < kLayers; ++l) {
    auto code = at::arange(first, first + q, at::kFloat)
                    .unsqueeze(0)
                    .add(at::arange(kKv, at::kFloat).mul(1000).unsqueeze(1));  // [kKv, q]
    layers[l].k = code.unsqueeze(-1).expand({kKv, q, kDim}).contiguous();
    layers[l].v = layers[l].k.add(100000.0 * l);
    if (scores) layers[l].scores = at::full({kKv, q, past + q}, 0.1f);
  }
  return layers;
}

// A MemoryState for `config` over a plan of `total` tokens, with its pruner beside it.
struct StateUnderTest {
  StateUnderTest(const CompressionConfig& config, int64_t total, int64_t n_layers = kLayers) {
    auto plan = ChunkPlan::Create(config, total);
    EXPECT_TRUE(plan.ok()) << plan.status();
    auto created = PrunerRegistry::Global().Create(config);
    EXPECT_TRUE(created.ok()) << created.status();
    pruner = *std::move(created);
    state = MemoryState::Create(config, *plan, *pruner, n_layers);
    EXPECT_TRUE(state.ok()) << state.status();
  }
  std::unique_ptr<Pruner> pruner;
  absl::StatusOr<MemoryState> state = absl::UnknownError("not created");
};

struct Run {
  std::vector<int64_t> visible_len;  // per step, sinks included
  std::vector<int64_t> hidden_len;
  Memory memory;
};

// Feeds `sizes` chunks through a MemoryState for `config` and checks the invariants written at
// the top of memory_state.cc after every step.
Run Feed(const CompressionConfig& config, const std::vector<int64_t>& sizes,
         int64_t plan_length = -1) {
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  StateUnderTest fixture(config, plan_length >= 0 ? plan_length : total);
  auto& state = fixture.state;
  const Pruner* pruner = fixture.pruner.get();
  Run run;
  int64_t seen = 0;
  for (size_t t = 0; t < sizes.size(); ++t) {
    const int64_t past = state->visible().len();
    auto chunk = MakeChunk(seen, sizes[t], past, pruner->needs_scores());
    absl::Status s = state->Append(t, t + 1 == sizes.size(), chunk);
    EXPECT_TRUE(s.ok()) << s;
    seen += sizes[t];
    const Memory& m = state->visible();
    run.visible_len.push_back(m.len());
    run.hidden_len.push_back(state->hidden_len());
    EXPECT_EQ(m.n_tokens, seen);
    const bool local = config.pruner == "local_window";
    EXPECT_EQ(m.n_sinks, local ? 0 : std::min(config.n_sink_tokens, seen));
    if (config.pruner != "no_compress") {
      EXPECT_LE(m.len() - m.n_sinks, config.memory_size) << "step " << t;
      EXPECT_LE(state->hidden_len(), config.memory_size) << "step " << t;
    }
    for (int64_t l = 0; l < kLayers && m.len() > 0; ++l) {
      const LayerMemory& layer = m.layers[l];
      EXPECT_EQ(layer.len(), m.len());
      auto src = Rows(layer.src);
      for (int64_t h = 0; h < kKv; ++h) {
        for (int64_t i = 0; i < m.n_sinks; ++i) EXPECT_EQ(src[h][i], i);
        for (size_t i = 1; i < src[h].size(); ++i) EXPECT_LT(src[h][i - 1], src[h][i]);
      }
      // Keys and values travelled with their src.
      auto expect_k =
          layer.src.to(at::kFloat).add(at::arange(kKv, at::kFloat).mul(1000).unsqueeze(1));
      EXPECT_TRUE(at::equal(layer.k.select(2, 0), expect_k));
      EXPECT_TRUE(at::equal(layer.v.select(2, 1), expect_k.add(100000.0 * l)));
    }
  }
  run.memory = std::move(*state).TakeMemory();
  return run;
}

CompressionConfig Config(const char* pruner, MemoryType type, int64_t m, int64_t sinks = 2) {
  CompressionConfig c;
  c.pruner = pruner;
  c.memory_type = type;
  c.memory_size = m;
  c.n_sink_tokens = sinks;
  c.chunk_size = 5;
  return c;
}

using Sizes = std::vector<int64_t>;

TEST(MemoryStateTest, FmHoldsSinksPlusM) {
  auto run = Feed(Config("streaming_llm", MemoryType::kFm, 8), {5, 5, 5, 5, 5, 5});
  EXPECT_EQ(run.visible_len, (Sizes{5, 10, 10, 10, 10, 10}));
  // streaming_llm keeps the newest M after the sinks.
  EXPECT_EQ(Rows(run.memory.layers[0].src)[0], (Sizes{0, 1, 22, 23, 24, 25, 26, 27, 28, 29}));
}

TEST(MemoryStateTest, ChunkPrefixUnderFmFreezesTheFirstTokens) {
  auto run = Feed(Config("chunk_prefix", MemoryType::kFm, 4), {5, 5, 5});
  EXPECT_EQ(Rows(run.memory.layers[1].src)[1], (Sizes{0, 1, 2, 3, 4, 5}));
}

// IM linear, L=30, C=5, M=12: n=6, a=2, targets 2,4,6,8,10,12 (§5.1) plus 2 sinks.
TEST(MemoryStateTest, ImGrowsWithTheSchedule) {
  auto run = Feed(Config("streaming_llm", MemoryType::kIm, 12), {5, 5, 5, 5, 5, 5});
  EXPECT_EQ(run.visible_len, (Sizes{4, 6, 8, 10, 12, 14}));
}

// IMDC: the same targets over the decremental chunks 5, 9, 7, 5, 3, 1 (§5.3); memory entering
// a step plus its chunk stays at c̄ + m̄ (+ sinks). The last chunk (1 token) leaves the memory
// one short of M: nothing is left to fill it.
TEST(MemoryStateTest, ImdcKeepsMemoryPlusChunkConstant) {
  CompressionConfig c = Config("streaming_llm", MemoryType::kIm, 12);
  c.decremental_chunk = true;
  auto plan = ChunkPlan::Create(c, 30);
  ASSERT_TRUE(plan.ok());
  auto run = Feed(c, plan->planned_sizes());
  EXPECT_EQ(run.visible_len, (Sizes{4, 6, 8, 10, 12, 13}));
  for (size_t t = 1; t < plan->planned_sizes().size(); ++t) {
    EXPECT_EQ(run.visible_len[t - 1] + plan->planned_sizes()[t], 2 + 11) << t;
  }
}

// FIXED_INCREMENTAL, M=12 in 6 shares of 2: old entries are frozen, each chunk adds its share.
TEST(MemoryStateTest, FixedIncrementalAppendsShares) {
  auto run = Feed(Config("streaming_llm", MemoryType::kFixedIncremental, 12), {5, 5, 5, 5, 5, 5});
  EXPECT_EQ(run.visible_len, (Sizes{4, 6, 8, 10, 12, 14}));
  // Each chunk kept its 2 newest tokens (the memory is never re-selected).
  EXPECT_EQ(Rows(run.memory.layers[0].src)[0],
            (Sizes{0, 1, 3, 4, 8, 9, 13, 14, 18, 19, 23, 24, 28, 29}));
}

// A stream longer than planned (plan for 10 tokens, 20 arrive): shares 4, 3, then floor(7/2)=3
// per step, and the oldest entries are dropped to stay within M=7.
TEST(MemoryStateTest, FixedIncrementalDropsOldestBeyondM) {
  auto run = Feed(Config("streaming_llm", MemoryType::kFixedIncremental, 7), {5, 5, 5, 5},
                  /*plan_length=*/10);
  EXPECT_EQ(run.visible_len, (Sizes{5, 8, 9, 9}));
  EXPECT_EQ(Rows(run.memory.layers[0].src)[0], (Sizes{0, 1, 9, 12, 13, 14, 17, 18, 19}));
}

// DOUBLE_COMPRESS, M=12, cc=3: the hidden store grows 3, 6, 9, 12, 12; the LLM reads only the
// cc best of it (for streaming_llm the newest) plus the sinks.
TEST(MemoryStateTest, DoubleCompressReadsOnlyTheTopOfTheHiddenStore) {
  CompressionConfig c = Config("streaming_llm", MemoryType::kDoubleCompress, 12);
  c.double_compress_size = 3;
  auto run = Feed(c, {5, 5, 5, 5, 5});
  EXPECT_EQ(run.hidden_len, (Sizes{3, 6, 9, 12, 12}));
  EXPECT_EQ(run.visible_len, (Sizes{5, 5, 5, 5, 5}));
  EXPECT_EQ(Rows(run.memory.layers[0].src)[1], (Sizes{0, 1, 22, 23, 24}));
}

TEST(MemoryStateTest, DoubleCompressWithScores) {
  CompressionConfig c = Config("h2o", MemoryType::kDoubleCompress, 6);
  c.double_compress_size = 2;
  auto run = Feed(c, {5, 5, 5, 5});
  EXPECT_EQ(run.hidden_len, (Sizes{2, 4, 6, 6}));
  EXPECT_EQ(run.visible_len, (Sizes{4, 4, 4, 4}));
}

TEST(MemoryStateTest, LocalWindowCarriesNothing) {
  auto run = Feed(Config("local_window", MemoryType::kFm, 8), {5, 5, 5});
  EXPECT_EQ(run.visible_len, (Sizes{0, 0, 0}));
  EXPECT_EQ(run.memory.n_sinks, 0);
}

TEST(MemoryStateTest, NoCompressKeepsEverything) {
  auto run = Feed(Config("no_compress", MemoryType::kFm, 3), {5, 5, 5});
  EXPECT_EQ(run.visible_len, (Sizes{5, 10, 15}));
}

// Chunks shorter than the sink count: the first tokens become sinks as they arrive (§12.12).
TEST(MemoryStateTest, SinksFillAcrossTinyChunks) {
  auto run = Feed(Config("streaming_llm", MemoryType::kFm, 2, /*sinks=*/4), {1, 1, 1, 1, 1, 1, 1});
  EXPECT_EQ(run.visible_len, (Sizes{1, 2, 3, 4, 5, 6, 6}));
  EXPECT_EQ(Rows(run.memory.layers[0].src)[0], (Sizes{0, 1, 2, 3, 5, 6}));
}

TEST(MemoryStateTest, ZeroSinksAllowed) {
  auto run = Feed(Config("streaming_llm", MemoryType::kFm, 3, /*sinks=*/0), {5, 5});
  EXPECT_EQ(run.visible_len, (Sizes{3, 3}));
  EXPECT_EQ(Rows(run.memory.layers[0].src)[0], (Sizes{7, 8, 9}));
}

// Heads select independently: tova with per-head scores keeps different tokens per head.
TEST(MemoryStateTest, KvHeadsKeepDifferentEntries) {
  CompressionConfig c = Config("tova", MemoryType::kFm, 2, /*sinks=*/1);
  StateUnderTest t(c, 5);
  auto& state = t.state;
  ASSERT_TRUE(state.ok());
  auto chunk = MakeChunk(0, 5, 0, false);
  for (auto& layer : chunk) {
    // Head 0 looks at tokens 1 and 2, head 1 at tokens 3 and 4 (every query row alike).
    auto s = at::full({kKv, 5, 5}, 0.01f);
    s.select(0, 0).select(1, 1).fill_(0.5f);
    s.select(0, 0).select(1, 2).fill_(0.4f);
    s.select(0, 1).select(1, 3).fill_(0.5f);
    s.select(0, 1).select(1, 4).fill_(0.4f);
    layer.scores = s;
  }
  ASSERT_TRUE(state->Append(0, true, chunk).ok());
  EXPECT_EQ(Rows(state->visible().layers[0].src), (std::vector<Sizes>{{0, 1, 2}, {0, 3, 4}}));
}

TEST(MemoryStateTest, RejectsMismatchedChunksAndLeavesStateUnchanged) {
  CompressionConfig c = Config("tova", MemoryType::kFm, 4);
  StateUnderTest t(c, 10);
  auto& state = t.state;
  ASSERT_TRUE(state.ok());
  auto chunk = MakeChunk(0, 5, 0, /*scores=*/false);
  absl::Status s = state->Append(0, false, chunk);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), ::testing::HasSubstr("needs scores [2, n_rows >= 1, 5]"));
  chunk.pop_back();
  EXPECT_THAT(state->Append(0, false, chunk).message(),
              ::testing::HasSubstr("chunk has 1 layers, memory has 2"));
  EXPECT_EQ(state->visible().len(), 0);
  EXPECT_EQ(state->visible().n_tokens, 0);
}

// Selecting per layer while the forward holds that layer's scores (SelectLayer, what Compress
// does) keeps exactly what Append() keeps from the same scores, for every score pruner and
// memory type.
class SelectLayerTest : public ::testing::TestWithParam<std::tuple<std::string, MemoryType>> {};

TEST_P(SelectLayerTest, SameMemoryAsSelectingInAppend) {
  const auto& [pruner_name, type] = GetParam();
  CompressionConfig c = Config(pruner_name.c_str(), type, 6, /*sinks=*/2);
  c.double_compress_size = 3;
  const std::vector<int64_t> sizes = {5, 7, 4, 6, 5};
  StateUnderTest a(c, 27), b(c, 27);
  auto& direct = a.state;
  auto& early = b.state;
  ASSERT_TRUE(direct.ok() && early.ok());
  at::manual_seed(7);
  int64_t seen = 0;
  for (size_t t = 0; t < sizes.size(); ++t) {
    const bool last = t + 1 == sizes.size();
    const int64_t past = direct->visible().len();
    ASSERT_EQ(early->visible().len(), past);
    auto chunk = MakeChunk(seen, sizes[t], past, /*scores=*/true);
    for (auto& layer : chunk) layer.scores = at::rand(layer.scores.sizes());
    auto selected = chunk;
    for (int64_t l = 0; l < kLayers; ++l) {
      auto sel = early->SelectLayer(l, t, last, sizes[t], selected[l].scores);
      ASSERT_TRUE(sel.ok()) << sel.status();
      selected[l].selection = *sel;
      selected[l].scores = at::Tensor();  // Append must not need them
    }
    ASSERT_TRUE(direct->Append(t, last, chunk).ok());
    ASSERT_TRUE(early->Append(t, last, selected).ok());
    for (int64_t l = 0; l < kLayers; ++l) {
      EXPECT_TRUE(at::equal(direct->visible().layers[l].src, early->visible().layers[l].src))
          << "step " << t << " layer " << l;
      EXPECT_TRUE(at::equal(direct->visible().layers[l].v, early->visible().layers[l].v));
      EXPECT_TRUE(at::equal(direct->visible().layers[l].rank, early->visible().layers[l].rank));
    }
    seen += sizes[t];
  }
}

INSTANTIATE_TEST_SUITE_P(ScorePruners, SelectLayerTest,
                         ::testing::Combine(::testing::Values("tova", "h2o", "conv", "roco"),
                                            ::testing::Values(MemoryType::kFm, MemoryType::kIm,
                                                              MemoryType::kFixedIncremental,
                                                              MemoryType::kDoubleCompress)));

TEST(MemoryStateTest, SelectLayerRejectsWhatDoesNotFit) {
  CompressionConfig c = Config("tova", MemoryType::kFm, 4);
  StateUnderTest t(c, 10);
  auto& state = t.state;
  ASSERT_TRUE(state.ok());
  auto ok = state->SelectLayer(1, 0, false, 5, at::rand({kKv, 5, 5}));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->indices.sizes(), (std::vector<int64_t>{kKv, 3}));  // 5 tokens - 2 sinks
  EXPECT_EQ(state->SelectLayer(2, 0, false, 5, at::rand({kKv, 5, 5})).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(state->SelectLayer(0, 0, false, 5, at::rand({kKv, 5, 6})).status().message(),
              ::testing::HasSubstr("scores must be [n_kv_heads, n_rows >= 1, 5]"));
  EXPECT_EQ(state->SelectLayer(0, 0, false, 0, at::rand({kKv, 5, 0})).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A selection of the wrong shape is refused by Append, state unchanged.
  auto chunk = MakeChunk(0, 5, 0, false);
  for (auto& layer : chunk)
    layer.selection = {at::zeros({kKv + 1, 2}, at::kLong), at::zeros({kKv + 1, 2})};
  EXPECT_THAT(state->Append(0, false, chunk).message(),
              ::testing::HasSubstr("selection must be indices and rank [2, k]"));
  EXPECT_EQ(state->visible().n_tokens, 0);
}

TEST(MemoryStateTest, TargetsFollowTheMemoryType) {
  CompressionConfig c = Config("streaming_llm", MemoryType::kIm, 2048);
  c.chunk_size = 2048;
  StateUnderTest t(c, 16384, 1);
  auto& state = t.state;
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->Target(0, false), 256);
  EXPECT_EQ(state->Target(3, false), 1024);
  EXPECT_EQ(state->Target(3, /*is_last=*/true), 2048);  // a stream that ended early
}

}  // namespace
}  // namespace ctxmem::compress
