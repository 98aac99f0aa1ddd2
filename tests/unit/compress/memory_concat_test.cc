#include "common/compress/memory_concat.h"

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/compress/test_util.h"

namespace ctxmem::compress {
namespace {

using ::testing::HasSubstr;

// A memory of `len` entries per head over `n_layers` layers (2 kv heads, head_dim 8) whose
// sources are tokens [first, first + len) of a stream of n_tokens; values encode `tag`.
Memory MakeMemory(int64_t len, int64_t first, int64_t n_tokens, double tag,
                  PositionMode mode = PositionMode::kSlots, int64_t n_layers = 2) {
  Memory m;
  m.n_tokens = n_tokens;
  m.n_sinks = len > 0 ? 1 : 0;
  m.position_mode = mode;
  if (len == 0) return m;
  for (int64_t l = 0; l < n_layers; ++l) {
    LayerMemory layer;
    layer.k = testing::Wave({2, len, 8}, tag + l, 1.0);  // [2, len, 8]
    layer.v = testing::Wave({2, len, 8}, tag + l + 0.5, 1.0);
    layer.src = testing::SrcRange(2, first, len);  // [2, len]
    layer.rank = at::ones({2, len}, at::kFloat);
    m.layers.push_back(std::move(layer));
  }
  return m;
}

TEST(MemoryConcatTest, SlotsPutsEntriesInOrder) {
  const Memory a = MakeMemory(3, 0, 10, 0.0);
  const Memory b = MakeMemory(4, 2, 7, 5.0);
  const std::vector<const Memory*> both = {&a, &b};
  auto r = ConcatMemories(both);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->len(), 7);
  EXPECT_EQ(r->n_tokens, 17);
  EXPECT_EQ(r->n_sinks, 1);
  EXPECT_EQ(r->position_mode, PositionMode::kSlots);
  ASSERT_EQ(r->layers.size(), 2u);
  for (int l = 0; l < 2; ++l) {
    EXPECT_TRUE(at::equal(r->layers[l].k.narrow(1, 0, 3), a.layers[l].k));
    EXPECT_TRUE(at::equal(r->layers[l].k.narrow(1, 3, 4), b.layers[l].k));
    EXPECT_TRUE(at::equal(r->layers[l].v.narrow(1, 3, 4), b.layers[l].v));
  }
  // b's sources are shifted past a's stream: tokens 2..5 of b are 12..15 of the joined one.
  EXPECT_EQ(
      testing::Rows(r->layers[0].src),
      (std::vector<std::vector<int64_t>>{{0, 1, 2, 12, 13, 14, 15}, {0, 1, 2, 12, 13, 14, 15}}));
  // The inputs are untouched.
  EXPECT_EQ(a.len(), 3);
  EXPECT_EQ(testing::Rows(b.layers[0].src)[0], (std::vector<int64_t>{2, 3, 4, 5}));
}

TEST(MemoryConcatTest, OriginalShiftsPositionsAndDecodingContinuesAfterAllSources) {
  auto model = testing::MakeTinyTransformer(c10::Device("cpu"));
  const Memory a = MakeMemory(3, 4, 10, 0.0, PositionMode::kOriginal);
  const Memory b = MakeMemory(2, 1, 6, 3.0, PositionMode::kOriginal);
  const std::vector<const Memory*> both = {&a, &b};
  auto r = ConcatMemories(both);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(testing::Rows(r->layers[1].src)[1], (std::vector<int64_t>{4, 5, 6, 11, 12}));
  auto joined = ToKvCache(*r, *model);
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_EQ(joined->next_position, 16);
  EXPECT_EQ(joined->seq_len(), 5);
  // b's keys are rotated to its shifted positions: the same as b alone with src + 10.
  Memory b_shifted = b;
  for (auto& layer : b_shifted.layers) layer.src = layer.src + 10;
  auto b_cache = ToKvCache(b_shifted, *model);
  ASSERT_TRUE(b_cache.ok());
  EXPECT_TRUE(at::allclose(joined->k[0].narrow(2, 3, 2), b_cache->k[0], 1e-5, 1e-6));
}

TEST(MemoryConcatTest, SlotsKvCacheContinuesAfterAllEntries) {
  auto model = testing::MakeTinyTransformer(c10::Device("cpu"));
  const Memory a = MakeMemory(3, 0, 10, 0.0);
  const Memory b = MakeMemory(4, 0, 9, 1.0);
  const std::vector<const Memory*> both = {&a, &b};
  auto r = ConcatMemories(both);
  ASSERT_TRUE(r.ok());
  auto cache = ToKvCache(*r, *model);
  ASSERT_TRUE(cache.ok());
  EXPECT_EQ(cache->next_position, 7);
}

TEST(MemoryConcatTest, EmptyMemoriesOnlyAddTheirTokens) {
  const Memory empty = MakeMemory(0, 0, 5, 0.0, PositionMode::kOriginal);
  const Memory b = MakeMemory(2, 0, 4, 1.0, PositionMode::kOriginal);
  const std::vector<const Memory*> list = {&empty, &b};
  auto r = ConcatMemories(list);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->len(), 2);
  EXPECT_EQ(r->n_tokens, 9);
  EXPECT_EQ(r->n_sinks, 0);  // the first memory had no sinks to keep
  EXPECT_EQ(testing::Rows(r->layers[0].src)[0], (std::vector<int64_t>{5, 6}));

  auto none = ConcatMemories({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(MemoryConcatTest, OneMemorySharesItsTensors) {
  const Memory a = MakeMemory(3, 0, 10, 0.0);
  const std::vector<const Memory*> list = {&a};
  auto r = ConcatMemories(list);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->layers[0].k.is_same(a.layers[0].k));
  EXPECT_EQ(r->n_tokens, 10);
}

TEST(MemoryConcatTest, RejectsMismatchedMemories) {
  const Memory a = MakeMemory(3, 0, 10, 0.0);
  const Memory original = MakeMemory(3, 0, 10, 0.0, PositionMode::kOriginal);
  std::vector<const Memory*> list = {&a, &original};
  auto r = ConcatMemories(list);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("memory 1 uses position_mode=original"));

  const Memory three_layers = MakeMemory(3, 0, 10, 0.0, PositionMode::kSlots, 3);
  list = {&a, &three_layers};
  r = ConcatMemories(list);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("3 layers"));

  Memory other_dim = MakeMemory(3, 0, 10, 0.0);
  for (auto& layer : other_dim.layers) {
    layer.k = testing::Wave({2, 3, 4}, 0.0, 1.0);
    layer.v = testing::Wave({2, 3, 4}, 0.0, 1.0);
  }
  list = {&a, &other_dim};
  r = ConcatMemories(list);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("memory 1 layer 0"));
}

}  // namespace
}  // namespace ctxmem::compress
