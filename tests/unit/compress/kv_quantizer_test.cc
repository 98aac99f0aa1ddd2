#include "common/compress/kv_quantizer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "tests/unit/compress/test_util.h"

namespace ctxmem::compress {
namespace {

KvFormat Format(KvDtype dtype, int64_t group) {
  KvFormat f;
  f.dtype = dtype;
  f.group_size = group;
  return f;
}

// Per element, |x - dequant| <= scale / 2 of its group (+ fp16 rounding of the zero point).
void ExpectWithinHalfStep(const at::Tensor& x, const at::Tensor& back, const at::Tensor& scale,
                          KiviGroupAxis axis, int64_t g) {
  at::Tensor s = scale.to(at::kFloat);  // per group
  at::Tensor per_elem;
  if (axis == KiviGroupAxis::kTokens) {
    per_elem = s.repeat_interleave(g, 1).narrow(1, 0, x.size(1));  // [n_kv, len, hd]
  } else {
    per_elem = s.repeat_interleave(std::min(g, x.size(2)), 2).narrow(2, 0, x.size(2));
  }
  at::Tensor err = (x - back).abs();
  EXPECT_TRUE((err <= per_elem * 0.5 + 2e-3).all().item<bool>())
      << "max err " << err.max().item<float>() << " max step " << per_elem.max().item<float>();
}

TEST(KvQuantizerTest, KeysPerChannelValuesPerTokenWithinHalfAStep) {
  const at::Tensor x = testing::Wave({2, 37, 12}, 0.4, 3.0);  // len 37: a partial last group
  for (KvDtype dtype : {KvDtype::kInt8, KvDtype::kInt4}) {
    for (int64_t g : {1, 8, 32, 64}) {
      const KvFormat f = Format(dtype, g);
      for (KiviGroupAxis axis : {KiviGroupAxis::kTokens, KiviGroupAxis::kChannels}) {
        auto q = KiviQuantize(x, f, axis);
        ASSERT_TRUE(q.ok()) << q.status();
        EXPECT_EQ(q->codes.scalar_type(), at::kByte);
        EXPECT_EQ(q->codes.sizes().vec(), KiviCodeShape(2, 37, 12, dtype));
        EXPECT_EQ(q->scale.scalar_type(), at::kHalf);
        EXPECT_EQ(q->scale.sizes().vec(), KiviScaleShape(2, 37, 12, g, axis));
        auto back = KiviDequantize(*q, f, axis, 37, 12);
        ASSERT_TRUE(back.ok()) << back.status();
        ExpectWithinHalfStep(x, *back, q->scale, axis, g);
      }
    }
  }
}

TEST(KvQuantizerTest, GroupScalesAreMinMaxOfTheRightAxis) {
  // Keys: channel c of tokens [0, 4) spans [-1, 1] * (c + 1); per-channel groups must see it.
  at::Tensor x = at::zeros({1, 4, 3});
  for (int64_t c = 0; c < 3; ++c) {
    x[0][0][c] = -1.0 * (c + 1);
    x[0][3][c] = 1.0 * (c + 1);
  }
  auto q = KiviQuantize(x, Format(KvDtype::kInt8, 4), KiviGroupAxis::kTokens);
  ASSERT_TRUE(q.ok()) << q.status();
  ASSERT_EQ(q->scale.sizes().vec(), (std::vector<int64_t>{1, 1, 3}));
  for (int64_t c = 0; c < 3; ++c) {
    EXPECT_NEAR(q->zero[0][0][c].item<float>(), -1.0 * (c + 1), 1e-3);
    EXPECT_NEAR(q->scale[0][0][c].item<float>(), 2.0 * (c + 1) / 255, 1e-4);
  }
  // Codes: the minimum maps to 0, the maximum to 255.
  EXPECT_EQ(q->codes[0][0][1].item<uint8_t>(), 0);
  EXPECT_EQ(q->codes[0][3][1].item<uint8_t>(), 255);
  // Values: per token, so token 0's group spans [-3, 0] across its channels.
  auto qv = KiviQuantize(x, Format(KvDtype::kInt8, 4), KiviGroupAxis::kChannels);
  ASSERT_TRUE(qv.ok()) << qv.status();
  ASSERT_EQ(qv->scale.sizes().vec(), (std::vector<int64_t>{1, 4, 1}));  // G clamped to 3
  EXPECT_NEAR(qv->zero[0][0][0].item<float>(), -3.0, 1e-3);
  EXPECT_NEAR(qv->scale[0][0][0].item<float>(), 2.0 / 255, 1e-4);  // [-3, -1]
}

TEST(KvQuantizerTest, Int4PacksTwoCodesPerByteEvenChannelLow) {
  // One token, 3 channels (odd head_dim): codes 0, 15, 7 -> bytes [0 | 15 << 4, 7].
  at::Tensor x = at::tensor({0.0f, 15.0f, 7.0f}).reshape({1, 1, 3});
  auto q = KiviQuantize(x, Format(KvDtype::kInt4, 3), KiviGroupAxis::kChannels);
  ASSERT_TRUE(q.ok()) << q.status();
  ASSERT_EQ(q->codes.sizes().vec(), (std::vector<int64_t>{1, 1, 2}));
  EXPECT_EQ(q->codes[0][0][0].item<uint8_t>(), 0xF0);
  EXPECT_EQ(q->codes[0][0][1].item<uint8_t>(), 0x07);
  auto back = KiviDequantize(*q, Format(KvDtype::kInt4, 3), KiviGroupAxis::kChannels, 1, 3);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(at::allclose(*back, x, 0, 1e-2)) << *back;
}

TEST(KvQuantizerTest, ConstantGroupsAndBadInputs) {
  at::Tensor x = at::full({2, 5, 4}, 0.25f);
  auto q = KiviQuantize(x, Format(KvDtype::kInt4, 2), KiviGroupAxis::kTokens);
  ASSERT_TRUE(q.ok()) << q.status();
  auto back = KiviDequantize(*q, Format(KvDtype::kInt4, 2), KiviGroupAxis::kTokens, 5, 4);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(at::allclose(*back, x, 0, 1e-3));
  EXPECT_EQ(KiviQuantize(x, Format(KvDtype::kBF16, 2), KiviGroupAxis::kTokens).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(KiviQuantize(x, Format(KvDtype::kInt8, 0), KiviGroupAxis::kTokens).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(KiviQuantize(at::full({2, 3}, 1.0f), Format(KvDtype::kInt8, 2), KiviGroupAxis::kTokens)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      KiviQuantize(at::full({1, 2, 2}, 1e6f), Format(KvDtype::kInt8, 2), KiviGroupAxis::kTokens)
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);  // beyond fp16 scales
  EXPECT_EQ(
      KiviDequantize(*q, Format(KvDtype::kInt4, 2), KiviGroupAxis::kTokens, 6, 4).status().code(),
      absl::StatusCode::kInvalidArgument);  // shapes do not fit len
}

TEST(KvQuantizerTest, RoundTripMemoryKeepsShapesSourcesAndDtype) {
  Memory memory;
  memory.n_sinks = 1;
  memory.n_tokens = 10;
  LayerMemory layer;
  layer.k = testing::Wave({2, 6, 8}, 0.1, 2.0);
  layer.v = testing::Wave({2, 6, 8}, 0.9, 1.0);
  layer.src = at::arange(6, at::kLong).unsqueeze(0).expand({2, 6}).contiguous();
  layer.rank = at::ones({2, 6});
  memory.layers.push_back(layer);
  for (KvDtype dtype : {KvDtype::kBF16, KvDtype::kInt8, KvDtype::kInt4}) {
    auto back = RoundTripMemory(memory, Format(dtype, 4));
    ASSERT_TRUE(back.ok()) << back.status();
    const LayerMemory& b = back->layers[0];
    EXPECT_EQ(b.k.sizes(), layer.k.sizes());
    EXPECT_EQ(b.k.scalar_type(), at::kFloat);
    EXPECT_TRUE(at::equal(b.src, layer.src));
    EXPECT_TRUE(at::equal(b.rank, layer.rank));
    EXPECT_FALSE(at::equal(b.k, layer.k));  // really rounded
    // int4 with 15 steps over a range of 4: error <= 0.14; int8 far less.
    const double tol = dtype == KvDtype::kInt4 ? 0.15 : 0.02;
    EXPECT_TRUE(at::allclose(b.k, layer.k, 0, tol)) << KvDtypeLabel(dtype);
    EXPECT_TRUE(at::allclose(b.v, layer.v, 0, tol)) << KvDtypeLabel(dtype);
  }
}

}  // namespace
}  // namespace ctxmem::compress
