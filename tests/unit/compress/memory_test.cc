#include "common/compress/memory.h"

#include <ATen/ops/allclose.h>
#include <ATen/ops/arange.h>

#include "gtest/gtest.h"
#include "tests/unit/compress/test_util.h"

namespace ctxmem::compress {
namespace {

using testing::Wave;

class MemoryTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!testing::DeviceAvailable(GetParam())) GTEST_SKIP() << GetParam() << " not available";
    device_ = testing::DeviceOf(GetParam());
    model_ = testing::MakeTinyTransformer(device_);
  }
  // 2 layers, 2 kv heads, 4 entries per head; the heads kept different tokens.
  Memory MakeMemory(PositionMode mode) {
    Memory m;
    m.n_sinks = 1;
    m.n_tokens = 12;
    m.position_mode = mode;
    for (int l = 0; l < 2; ++l) {
      LayerMemory layer;
      layer.k = Wave({2, 4, 8}, 0.3 + l, 1.0).to(device_);
      layer.v = Wave({2, 4, 8}, 1.3 + l, 1.0).to(device_);
      layer.src = testing::Mat({{0, 1, 5, 9}, {0, 2, 3, 11}}).to(at::kLong).to(device_);
      layer.rank = testing::Mat({{0, 0, 0, 0}, {0, 0, 0, 0}}).to(device_);
      m.layers.push_back(layer);
    }
    return m;
  }
  c10::Device device_ = c10::Device(c10::kCPU);
  std::unique_ptr<model::Transformer> model_;
};

TEST_P(MemoryTest, SlotsModePlacesEntriesAtTheirSlots) {
  Memory m = MakeMemory(PositionMode::kSlots);
  auto cache = ToKvCache(m, *model_);
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_EQ(cache->next_position, 4);
  ASSERT_EQ(cache->k.size(), 2u);
  auto slots = at::arange(4, at::TensorOptions().dtype(at::kLong).device(device_)).unsqueeze(0);
  for (int l = 0; l < 2; ++l) {
    EXPECT_EQ(cache->k[l].sizes(), (std::vector<int64_t>{1, 2, 4, 8}));
    EXPECT_TRUE(at::allclose(cache->k[l], model_->RotateKeys(m.layers[l].k.unsqueeze(0), slots)));
    EXPECT_TRUE(at::allclose(cache->v[l], m.layers[l].v.unsqueeze(0)));
  }
}

TEST_P(MemoryTest, OriginalModeRotatesEachHeadToItsOwnPositions) {
  Memory m = MakeMemory(PositionMode::kOriginal);
  auto cache = ToKvCache(m, *model_);
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_EQ(cache->next_position, 12);  // decoding continues after the original stream
  for (int l = 0; l < 2; ++l) {
    for (int h = 0; h < 2; ++h) {
      auto k_h = m.layers[l].k.narrow(0, h, 1).unsqueeze(0);  // [1, 1, 4, 8]
      auto pos = m.layers[l].src.narrow(0, h, 1);             // [1, 4]
      EXPECT_TRUE(at::allclose(cache->k[l].narrow(1, h, 1), model_->RotateKeys(k_h, pos)))
          << "layer " << l << " head " << h;
    }
  }
}

TEST_P(MemoryTest, EmptyMemoryGivesAnEmptyCache) {
  Memory m;
  m.n_tokens = 9;
  auto cache = ToKvCache(m, *model_);
  ASSERT_TRUE(cache.ok());
  EXPECT_TRUE(cache->empty());
  EXPECT_EQ(cache->next_position, 0);
  m.position_mode = PositionMode::kOriginal;
  EXPECT_EQ(ToKvCache(m, *model_)->next_position, 9);
}

TEST_P(MemoryTest, RejectsAMemoryOfAnotherModel) {
  Memory m = MakeMemory(PositionMode::kSlots);
  m.layers.pop_back();
  auto cache = ToKvCache(m, *model_);
  EXPECT_EQ(cache.status().code(), absl::StatusCode::kInvalidArgument);
  m = MakeMemory(PositionMode::kSlots);
  m.layers[1].v = m.layers[1].v.narrow(2, 0, 4);
  EXPECT_EQ(ToKvCache(m, *model_).status().code(), absl::StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Devices, MemoryTest, ::testing::ValuesIn(testing::TestDevices()));

}  // namespace
}  // namespace ctxmem::compress
