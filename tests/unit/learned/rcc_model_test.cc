#include "common/learned/rcc_model.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>

#include <memory>
#include <string>
#include <vector>

#include "common/compress/compressor.h"
#include "common/compress/config_json.h"
#include "common/compress/token_source.h"
#include "common/learned/learned_method.h"
#include "common/learned/rcc_bridge.h"
#include "common/learned/rcc_bridge_registry.h"
#include "common/learned/rcc_compressor.h"
#include "common/model/model.h"
#include "gtest/gtest.h"
#include "tests/unit/test_files.h"

namespace ctxmem::learned {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<model::Model> Tiny(const std::string& arch) {
  auto m = model::Model::Load(ctxmem::testing::TestDataPath("tiny/" + arch));
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *std::move(m) : nullptr;
}

std::vector<int32_t> Tokens(int64_t n, int64_t salt = 0) {
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < n; ++i) ids.push_back(static_cast<int32_t>((i * 37 + salt * 11) % 300));
  return ids;
}

compress::CompressionConfig RccConfig(const std::string& bridge, int64_t window, int64_t rate) {
  compress::CompressionConfig c;
  c.pruner = "rcc";
  c.rcc_bridge = bridge;
  c.rcc_window = window;
  c.rcc_rate = rate;
  return c;
}

absl::StatusOr<compress::CompressResult> CompressIds(const model::Transformer& tf,
                                                     const std::vector<int32_t>& ids,
                                                     const compress::CompressionConfig& config) {
  compress::SpanTokenSource source(ids);
  return compress::Compress(tf, source, config);
}

void ExpectClose(const at::Tensor& got, const at::Tensor& want, const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double scale = want.abs().max().item<double>() + 1e-12;
  EXPECT_LE((got - want).abs().max().item<double>() / scale, 1e-5) << what;
}

// The memory a stride pruner keeps: every window run alone (positions 0..n-1), the pre-RoPE K
// and V of its gather rows; windows concatenated.
std::vector<std::pair<at::Tensor, at::Tensor>> StrideMemory(const model::Transformer& tf,
                                                            const std::vector<int32_t>& ids,
                                                            int64_t window, int64_t rate) {
  const int64_t n_layers = tf.config().n_layers;
  std::vector<std::vector<at::Tensor>> ks(n_layers), vs(n_layers);
  for (size_t start = 0; start < ids.size(); start += window) {
    const int64_t n = std::min<int64_t>(window, ids.size() - start);
    std::vector<int64_t> w(ids.begin() + start, ids.begin() + start + n);
    model::ForwardOptions o;
    o.return_pre_rope_keys = true;
    o.logits = model::LogitsMode::kNone;
    auto out = tf.Forward(at::tensor(w).unsqueeze(0), at::arange(n).unsqueeze(0), nullptr, o);
    EXPECT_TRUE(out.ok()) << out.status();
    at::Tensor rows = at::tensor(RccGatherRows(n, rate));
    for (int64_t l = 0; l < n_layers; ++l) {
      ks[l].push_back(out->k_pre_rope[l][0].index_select(1, rows));
      vs[l].push_back(out->v[l][0].index_select(1, rows));
    }
  }
  std::vector<std::pair<at::Tensor, at::Tensor>> mem;
  for (int64_t l = 0; l < n_layers; ++l) mem.push_back({at::cat(ks[l], 1), at::cat(vs[l], 1)});
  return mem;
}

TEST(RccGatherRowsTest, LastTokenOfEachGroup) {
  auto rows = RccGatherRows(4096, 32);
  ASSERT_EQ(rows.size(), 128u);
  EXPECT_EQ(rows.front(), 31);
  EXPECT_EQ(rows.back(), 4095);
  EXPECT_EQ(RccGatherRows(10, 4), (std::vector<int64_t>{3, 7, 9}));
  EXPECT_EQ(RccGatherRows(3, 4), (std::vector<int64_t>{2}));
  EXPECT_TRUE(RccGatherRows(0, 4).empty());
}

class RccArchTest : public ::testing::TestWithParam<std::string> {};

// The zero-initialised residual bridge (built-in "stride", and a created one with zero
// weights) gives exactly the stride pruner's memory, on llama and gpt_neox.
TEST_P(RccArchTest, ZeroBridgeEqualsStridePruner) {
  auto m = Tiny(GetParam());
  ASSERT_NE(m, nullptr);
  const model::Transformer& tf = m->transformer();
  const std::vector<int32_t> ids = Tokens(150);  // windows of 64, 64, 22 (22 % 8 != 0)
  auto want = StrideMemory(tf, ids, 64, 8);
  auto got = CompressIds(tf, ids, RccConfig("stride", 64, 8));
  ASSERT_TRUE(got.ok()) << got.status();
  const compress::Memory& mem = got->memory;
  EXPECT_EQ(mem.len(), 8 + 8 + 3);
  EXPECT_EQ(mem.n_tokens, 150);
  EXPECT_EQ(mem.n_sinks, 0);
  EXPECT_EQ(got->n_chunks, 3);
  EXPECT_EQ(mem.layers[0].src[0][8].item<int64_t>(), 64 + 7);
  EXPECT_EQ(mem.layers[0].src[0][18].item<int64_t>(), 149);
  for (size_t l = 0; l < want.size(); ++l) {
    ExpectClose(mem.layers[l].k, want[l].first, "k layer " + std::to_string(l));
    ExpectClose(mem.layers[l].v, want[l].second, "v layer " + std::to_string(l));
  }
  // A created residual bridge (full rank, zero weights) is the same memory.
  RccBridgeShape shape{RccVariant::kResidual, tf.config().n_layers, tf.config().hidden, 0, 64, 8};
  auto zero = RccBridge::Create(shape);
  ASSERT_TRUE(zero.ok()) << zero.status();
  auto slots = RccEncode(tf, std::vector<int32_t>(ids.begin(), ids.begin() + 64), 8);
  ASSERT_TRUE(slots.ok()) << slots.status();
  model::ForwardOptions o;
  o.return_pre_rope_keys = true;
  auto out = RccDecode(tf, *zero, *slots, {}, nullptr, o);
  ASSERT_TRUE(out.ok()) << out.status();
  for (size_t l = 0; l < want.size(); ++l) {
    ExpectClose(out->k_pre_rope[l][0], want[l].first.narrow(1, 0, 8), "created zero bridge");
  }
}

// Windows one after another (the decoder prefilling each window's slots after the memory so
// far) equal one decoder pass over all slots concatenated, for the paper's bridge where the
// past matters; and the memory depends on the window's content.
TEST_P(RccArchTest, PaperBridgeRecurrentWindowsEqualOnePass) {
  auto m = Tiny(GetParam());
  ASSERT_NE(m, nullptr);
  const model::Transformer& tf = m->transformer();
  at::manual_seed(7);
  RccBridgeShape shape{RccVariant::kPaper, tf.config().n_layers, tf.config().hidden, 0, 32, 4};
  auto bridge = RccBridge::Create(shape);
  ASSERT_TRUE(bridge.ok()) << bridge.status();
  testing::TempDir dir;
  const std::string path = dir.File("paper.safetensors");
  ASSERT_TRUE(bridge->Save(path).ok());
  const std::string name = "rcc_paper_" + GetParam();
  ASSERT_TRUE(RegisterLearned(name, path).ok());
  const std::vector<int32_t> ids = Tokens(96);
  auto got = CompressIds(tf, ids, RccConfig(name, 32, 4));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->memory.len(), 24);

  RccSlots all;
  for (int64_t start = 0; start < 96; start += 32) {
    auto s = RccEncode(tf, std::vector<int32_t>(ids.begin() + start, ids.begin() + start + 32), 4);
    ASSERT_TRUE(s.ok()) << s.status();
    if (all.states.empty())
      all.states = s->states;
    else {
      for (size_t l = 0; l < all.states.size(); ++l) {
        all.states[l] = at::cat({all.states[l], s->states[l]}, 1);
      }
    }
    for (int64_t r : s->rows) all.rows.push_back(start + r);
  }
  model::ForwardOptions o;
  o.return_pre_rope_keys = true;
  auto one = RccDecode(tf, *bridge, all, {}, nullptr, o);
  ASSERT_TRUE(one.ok()) << one.status();
  for (int64_t l = 0; l < tf.config().n_layers; ++l) {
    ExpectClose(got->memory.layers[l].k, one->k_pre_rope[l][0], "k");
    ExpectClose(got->memory.layers[l].v, one->v[l][0], "v");
  }
  // Other text, other memory (information flows through the bridge).
  auto other = CompressIds(tf, Tokens(96, 5), RccConfig(name, 32, 4));
  ASSERT_TRUE(other.ok());
  EXPECT_GT((other->memory.layers[1].k - got->memory.layers[1].k).abs().max().item<double>(), 1e-3);
  // The memory id names the bridge by content.
  auto j = compress::CompressionConfigToJson(RccConfig(name, 32, 4));
  EXPECT_THAT(j.at("rcc_bridge_id").get<std::string>(), HasSubstr("sha256:"));

  // Append: compress(A) then append(B) equals compress(A + B) when A is whole windows.
  std::vector<int32_t> a(ids.begin(), ids.begin() + 64), b(ids.begin() + 64, ids.end());
  auto base = CompressIds(tf, a, RccConfig(name, 32, 4));
  ASSERT_TRUE(base.ok());
  compress::ResumableMemory resumable{base->memory, base->state};
  compress::SpanTokenSource more(b);
  auto appended = compress::CompressAppend(tf, more, RccConfig(name, 32, 4), resumable);
  ASSERT_TRUE(appended.ok()) << appended.status();
  ExpectClose(appended->memory.layers[1].k, got->memory.layers[1].k, "append k");
  // A base that ends inside a window is refused.
  auto short_base =
      CompressIds(tf, std::vector<int32_t>(ids.begin(), ids.begin() + 40), RccConfig(name, 32, 4));
  ASSERT_TRUE(short_base.ok());
  compress::SpanTokenSource more2(b);
  compress::ResumableMemory short_resumable{short_base->memory, short_base->state};
  auto bad = compress::CompressAppend(tf, more2, RccConfig(name, 32, 4), short_resumable);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Archs, RccArchTest, ::testing::Values("llama", "gpt_neox"));

TEST(RccBridgeTest, SaveLoadRoundTripFullLowRankBf16) {
  at::manual_seed(3);
  for (int64_t rank : {0, 4}) {
    for (bool bf16 : {false, true}) {
      auto b = RccBridge::Create({RccVariant::kPaper, 3, 16, rank, 64, 8});
      ASSERT_TRUE(b.ok()) << b.status();
      testing::TempDir dir;
      ASSERT_TRUE(b->Save(dir.File("b.safetensors"), bf16).ok());
      auto back = RccBridge::Load(dir.File("b.safetensors"));
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_EQ(back->shape().rank, rank);
      EXPECT_EQ(back->shape().window, 64);
      EXPECT_EQ(back->shape().rate, 8);
      EXPECT_EQ(back->shape().variant, RccVariant::kPaper);
      at::Tensor x = at::randn({1, 5, 16});
      at::Tensor want = b->SlotStream(2, x, x), got = back->SlotStream(2, x, x);
      EXPECT_LE((want - got).abs().max().item<double>(), bf16 ? 1e-2 : 1e-7);
    }
  }
}

TEST(RccBridgeTest, BadInputsAreTypedErrors) {
  EXPECT_EQ(RccBridge::Create({RccVariant::kPaper, 2, 16, 0, 60, 8}).status().code(),
            absl::StatusCode::kInvalidArgument);  // window not a multiple of rate
  EXPECT_EQ(RccBridge::Load("/nonexistent/b.safetensors").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ParseRccVariant("lora").status().code(), absl::StatusCode::kInvalidArgument);
  auto cfg = RccConfig("no_such_bridge", 64, 8);
  EXPECT_THAT(cfg.Validate().message(), HasSubstr("unknown rcc_bridge"));
  EXPECT_EQ(RccConfig("stride", 64, 7).Validate().code(), absl::StatusCode::kInvalidArgument);
  auto m = Tiny("llama");
  ASSERT_NE(m, nullptr);
  auto wrong = RccBridge::Create({RccVariant::kPaper, 3, 16, 0, 64, 8});  // 3 x 16 != 2 x 64
  ASSERT_TRUE(wrong.ok());
  testing::TempDir dir;
  ASSERT_TRUE(wrong->Save(dir.File("w.safetensors")).ok());
  ASSERT_TRUE(RegisterLearned("rcc_wrong_shape", dir.File("w.safetensors")).ok());
  auto run = CompressIds(m->transformer(), Tokens(40), RccConfig("rcc_wrong_shape", 64, 8));
  EXPECT_EQ(run.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(run.status().message(), HasSubstr("layers"));
}

}  // namespace
}  // namespace ctxmem::learned
