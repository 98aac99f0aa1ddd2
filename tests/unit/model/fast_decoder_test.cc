// The packed decode step against the dense fp32 forward on the bundled model.

#include "common/model/fast_decoder.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <vector>

#include "common/model/generator.h"
#include "common/model/model.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/unit/model/test_paths.h"

namespace ctxmem::model {
namespace {

using ctxmem::testing::BundledModelPath;
using ctxmem::testing::BundledModelPresent;
using ctxmem::testing::TestDataPath;

class FastDecoderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!BundledModelPresent()) return;
    at::set_num_threads(2);
    ModelOptions options;
    options.decode = "packed";
    auto m = Model::Load(BundledModelPath(), options);
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = std::move(*m).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  void SetUp() override {
    if (model_ == nullptr) GTEST_SKIP() << "bundled model not found: " << BundledModelPath();
    ASSERT_NE(model_->packed_weights(), nullptr);
  }
  static Model* model_;
};
Model* FastDecoderTest::model_ = nullptr;

at::Tensor Ids(const std::vector<int64_t>& ids) {
  return at::tensor(ids, at::kLong).view({1, static_cast<int64_t>(ids.size())});  // [1, n]
}

// Dense prefill of a prompt, then 8 tokens through both paths from the same cache: the packed
// logits stay within a stated distance of the dense fp32 ones (int8 activations) and pick the
// same argmax; the keys and values it writes match the dense forward's.
TEST_F(FastDecoderTest, StepMatchesDenseForward) {
  c10::NoGradGuard no_grad;
  const Transformer& t = model_->transformer();
  const std::vector<int64_t> prompt = {1, 504, 3458, 282, 4649, 314, 253, 2132, 30, 3337, 28, 198};
  ForwardOptions fo;
  fo.logits = LogitsMode::kLast;
  fo.kv_with_past = true;
  auto pre = t.Forward(Ids(prompt), at::arange(12, at::kLong).view({1, 12}), nullptr, fo);
  ASSERT_TRUE(pre.ok()) << pre.status();
  KvCache dense;
  dense.Extend(pre->k, pre->v);
  auto fast = FastDecoder::Create(t, *model_->packed_weights(), 64);
  ASSERT_TRUE(fast.ok()) << fast.status();
  ASSERT_TRUE((*fast)->Load(dense).ok());
  int64_t token = pre->logits.view({-1}).argmax().item<int64_t>();
  double worst = 0;
  for (int step = 0; step < 8; ++step) {
    const int64_t pos = dense.next_position;
    auto d = t.Forward(Ids({token}), at::full({1, 1}, pos, at::kLong), &dense, fo);
    ASSERT_TRUE(d.ok()) << d.status();
    auto f = (*fast)->Step(static_cast<int32_t>(token), pos);
    ASSERT_TRUE(f.ok()) << f.status();
    const at::Tensor ref = d->logits.view({-1});
    const at::Tensor got = at::from_blob(const_cast<float*>(f->data()), {ref.numel()});
    const double err = (got - ref).abs().max().item<double>() / ref.abs().max().item<double>();
    worst = std::max(worst, err);
    EXPECT_LT(err, 0.08) << "step " << step;
    // The same top-1 where fp32's top-1 / top-2 gap is clear of the int8 activation noise (the
    // kTieGap of GreedyGoldensOfTransformers); at a near tie (step 0 here: 30.690 vs 30.624)
    // either of the two. The kernel families round differently and land on either side.
    const auto [top_v, top_i] = ref.topk(2);
    const int64_t got_top = got.argmax().item<int64_t>();
    if ((top_v[0] - top_v[1]).item<double>() >= 0.5) {
      EXPECT_EQ(got_top, top_i[0].item<int64_t>()) << "step " << step;
    } else {
      EXPECT_TRUE(got_top == top_i[0].item<int64_t>() || got_top == top_i[1].item<int64_t>())
          << "step " << step << ": " << got_top;
    }
    dense.Extend(d->k, d->v);
    token = ref.argmax().item<int64_t>();
  }
  std::printf("[ packed vs dense fp32 ] max |logit diff| / max |logit| over 8 steps: %.2e\n",
              worst);
  KvCache exported;
  (*fast)->ExportTo(&exported);
  ASSERT_EQ(exported.seq_len(), dense.seq_len());
  for (int64_t l : {0, 15, 29}) {
    const double kerr = (exported.k[l] - dense.k[l]).abs().max().item<double>() /
                        dense.k[l].abs().max().item<double>();
    EXPECT_LT(kerr, 0.03) << "layer " << l;
    // The prefill entries were copied, not recomputed: identical.
    EXPECT_TRUE(at::equal(exported.v[l].narrow(2, 0, 12), dense.v[l].narrow(2, 0, 12)));
  }
}

TEST_F(FastDecoderTest, RejectsBadInputs) {
  auto fast = FastDecoder::Create(model_->transformer(), *model_->packed_weights(), 2);
  ASSERT_TRUE(fast.ok());
  EXPECT_EQ((*fast)->Step(-1, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*fast)->Step(1 << 20, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*fast)->Step(5, -3).status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE((*fast)->Step(5, 0).ok());
  ASSERT_TRUE((*fast)->Step(6, 1).ok());
  EXPECT_EQ((*fast)->Step(7, 2).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(FastDecoder::Create(model_->transformer(), *model_->packed_weights(), 0).ok());
  KvCache too_long;
  too_long.k.assign(30, at::zeros({1, 3, 5, 64}));
  too_long.v = too_long.k;
  EXPECT_EQ((*fast)->Load(too_long).code(), absl::StatusCode::kInvalidArgument);
}

// Greedy generation on both paths: the same text for a plain prompt (the packed path differs
// from fp32 only by int8 activation rounding; the fraction of equal ids is printed).
TEST_F(FastDecoderTest, GreedyGenerationAgreesWithDense) {
  ModelOptions dense_options;
  dense_options.decode = "dense";
  auto dense = Model::Load(BundledModelPath(), dense_options);
  ASSERT_TRUE(dense.ok());
  ASSERT_EQ((*dense)->packed_weights(), nullptr);
  auto prompt = model_->tokenizer()->Encode("The capital of France is");
  ASSERT_TRUE(prompt.ok());
  GenerateOptions go;
  go.max_new_tokens = 24;
  go.stop_at_eos = false;
  auto a = Generate(*model_, *prompt, nullptr, go);
  auto b = Generate(**dense, *prompt, nullptr, go);
  ASSERT_TRUE(a.ok() && b.ok());
  size_t same = 0;
  while (same < a->ids.size() && same < b->ids.size() && a->ids[same] == b->ids[same]) ++same;
  std::printf("[ greedy ] packed and dense agree on the first %zu of %zu ids\n", same,
              b->ids.size());
  if (same >= 8u || same == b->ids.size()) return;
  // They part before 8 ids: only allowed at a near tie of the dense path's own logits there
  // (GreedyGoldensOfTransformers' kTieGap), which the int8 activation rounding may flip. Seen on
  // the 2-vCPU Xeon: a 0.22 gap at the 6th id, where the Zen 4 CPUs' dense logits did not tie.
  std::vector<int32_t> ids = *prompt;
  ids.insert(ids.end(), b->ids.begin(), b->ids.begin() + static_cast<int64_t>(same));
  const int64_t n = static_cast<int64_t>(ids.size());
  at::Tensor tokens = at::empty({1, n}, at::kLong);  // [1, n]
  for (int64_t i = 0; i < n; ++i) tokens.data_ptr<int64_t>()[i] = ids[i];
  ForwardOptions fo;
  fo.logits = LogitsMode::kLast;
  auto r =
      (*dense)->transformer().Forward(tokens, at::arange(n, at::kLong).view({1, n}), nullptr, fo);
  ASSERT_TRUE(r.ok()) << r.status();
  const auto top = std::get<0>(r->logits.reshape({-1}).topk(2));
  const double gap = top[0].item<double>() - top[1].item<double>();
  std::printf("[ greedy ] dense top-2 gap where they part: %.3f\n", gap);
  EXPECT_LT(gap, 0.5) << "packed and dense part at id " << same << " without a near tie";
}

// HF transformers' greedy generations (tests/data/model/greedy.json, docs/goldens.md) on the
// packed path. Its logits differ from fp32 by the int8 activation rounding (StepMatchesDenseForward
// bounds it), so a position where HF's own top-1 / top-2 logit gap is smaller than that may
// legitimately pick the other token. Two checks, on every kernel family:
//   - teacher forced (HF's ids fed back): at every position whose HF gap is >= kTieGap the packed
//     argmax is HF's token;
//   - free running: the greedy ids equal HF's up to the first position with a gap < kTieGap
//     (all 8 of the chatml generation; the plain one has a 0.22 gap at its first token).
TEST_F(FastDecoderTest, GreedyGoldensOfTransformers) {
  constexpr double kTieGap = 0.5;  // logits; ~2 % of max|logit| here
  std::ifstream in(TestDataPath("model/greedy.json"));
  ASSERT_TRUE(in.good());
  const nlohmann::json j = nlohmann::json::parse(in);
  GenerateOptions go;
  go.max_new_tokens = j.at("max_new_tokens").get<int64_t>();
  go.stop_ids = j.at("eos_token_ids").get<std::vector<int32_t>>();
  const Transformer& t = model_->transformer();
  for (const auto& g : j.at("generations")) {
    const std::string kind = g.at("kind").get<std::string>();
    const auto prompt = g.at("prompt_ids").get<std::vector<int32_t>>();
    const auto want = g.at("generated_ids").get<std::vector<int32_t>>();
    const auto gap = g.at("top1_top2_logit_gap").get<std::vector<double>>();
    ASSERT_EQ(want.size(), gap.size());
    // Teacher forced: the prompt's last token and HF's ids through the packed steps.
    auto fast = FastDecoder::Create(t, *model_->packed_weights(),
                                    static_cast<int64_t>(prompt.size() + want.size()));
    ASSERT_TRUE(fast.ok()) << fast.status();
    absl::StatusOr<absl::Span<const float>> logits;
    for (size_t i = 0; i < prompt.size(); ++i) {
      logits = (*fast)->Step(prompt[i], static_cast<int64_t>(i));
      ASSERT_TRUE(logits.ok()) << logits.status();
    }
    int checked = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      const auto best = std::max_element(logits->begin(), logits->end()) - logits->begin();
      if (gap[i] >= kTieGap) {
        EXPECT_EQ(best, want[i]) << kind << " position " << i << " (HF gap " << gap[i] << ")";
        ++checked;
      }
      if (i + 1 < want.size()) {
        logits = (*fast)->Step(want[i], static_cast<int64_t>(prompt.size() + i));
        ASSERT_TRUE(logits.ok()) << logits.status();
      }
    }
    // Free running, up to the first near-tie.
    auto r = Generate(*model_, prompt, nullptr, go);
    ASSERT_TRUE(r.ok()) << r.status();
    size_t sure = 0;
    while (sure < gap.size() && gap[sure] >= kTieGap) ++sure;
    ASSERT_GE(r->ids.size(), sure) << kind;
    EXPECT_EQ(std::vector<int32_t>(r->ids.begin(), r->ids.begin() + sure),
              std::vector<int32_t>(want.begin(), want.begin() + sure))
        << kind;
    size_t same = 0;
    while (same < r->ids.size() && same < want.size() && r->ids[same] == want[same]) ++same;
    std::printf(
        "[ %s ] teacher-forced argmax checked at %d of %zu positions; free-running "
        "greedy equals HF on the first %zu of %zu ids\n",
        kind.c_str(), checked, want.size(), same, want.size());
  }
}

}  // namespace
}  // namespace ctxmem::model
