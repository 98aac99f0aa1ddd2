// KL(uncompressed || compressed) of the next-token distribution in eval-ppl rows, checked
// against torch's own at::kl_div on a plain full forward's log-probabilities.
#include <ATen/ops/arange.h>
#include <ATen/ops/kl_div.h>
#include <ATen/ops/tensor.h>

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/eval/ppl_sweep.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/compress/test_util.h"

namespace ctxmem::eval {
namespace {

using ::testing::HasSubstr;

std::vector<int32_t> Tokens(int n) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = (i * 7 + 3) % 61;
  return t;
}

class PplSweepKlTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!compress::testing::DeviceAvailable(GetParam()))
      GTEST_SKIP() << GetParam() << " not available";
    model_ = compress::testing::MakeTinyTransformer(compress::testing::DeviceOf(GetParam()));
  }

  // log p(token t+1 | tokens[0..t]) of one uncompressed forward: [n - 1, n_vocab].
  at::Tensor FullForwardLogProbs(const std::vector<int32_t>& tokens, int64_t n) {
    auto ids = at::tensor(std::vector<int32_t>(tokens.begin(), tokens.begin() + n), at::kInt)
                   .to(at::kLong)
                   .to(model_->device())
                   .unsqueeze(0);                                           // [1, n]
    auto pos = at::arange(n, at::kLong).to(model_->device()).unsqueeze(0);  // [1, n]
    auto full = model_->Forward(ids, pos, nullptr, model::ForwardOptions{});
    EXPECT_TRUE(full.ok()) << full.status();
    return full->logits[0].narrow(0, 0, n - 1).log_softmax(-1);  // [n - 1, n_vocab]
  }

  static compress::CompressionConfig Tova(int64_t chunk, int64_t memory) {
    compress::CompressionConfig c;
    c.pruner = "tova";
    c.chunk_size = chunk;
    c.memory_size = memory;
    c.n_sink_tokens = 1;
    return c;
  }

  std::unique_ptr<model::Transformer> model_;
};

// A memory that keeps everything (M >= the window) gives the uncompressed distribution: KL 0.
TEST_P(PplSweepKlTest, KlOfAnUnprunedMemoryIsZero) {
  const std::vector<int32_t> tokens = Tokens(48);
  NextTokenLogProbs kl;
  kl.reference = FullForwardLogProbs(tokens, 40);
  for (const char* pruner : {"no_compress", "tova"}) {
    compress::CompressionConfig c = Tova(10, 64);
    c.pruner = pruner;
    auto row = EvaluateCompressedPerplexity(*model_, tokens, 40, c, nullptr, kl);
    ASSERT_TRUE(row.ok()) << row.status();
    ASSERT_TRUE(row->has_kl);
    EXPECT_NEAR(row->kl, 0, 1e-5) << pruner;
    ASSERT_EQ(row->chunk_kl.size(), 4u);
    for (double k : row->chunk_kl) EXPECT_NEAR(k, 0, 1e-5) << pruner;
  }
}

// A pruned memory: chunk 0 reads no memory (KL 0), the later chunks read a pruned one (KL > 0),
// and every chunk's KL is torch's kl_div of the full forward's distribution and the compressed
// run's (kept with `capture`, whose NLL is checked against the row's too).
TEST_P(PplSweepKlTest, KlOfAPrunedMemoryMatchesTorchKlDiv) {
  const std::vector<int32_t> tokens = Tokens(48);
  const at::Tensor ref = FullForwardLogProbs(tokens, 40);  // [39, V]
  at::Tensor logq;
  NextTokenLogProbs kl;
  kl.reference = ref;
  kl.capture = &logq;
  auto row = EvaluateCompressedPerplexity(*model_, tokens, 40, Tova(10, 4), nullptr, kl);
  ASSERT_TRUE(row.ok()) << row.status();
  ASSERT_TRUE(logq.defined());
  ASSERT_EQ(logq.sizes(), ref.sizes());
  auto next = at::tensor(std::vector<int32_t>(tokens.begin() + 1, tokens.begin() + 40), at::kInt)
                  .to(at::kLong)
                  .to(logq.device())
                  .unsqueeze(1);  // [39, 1]
  EXPECT_NEAR(-logq.gather(1, next).sum().item<double>() / 39, row->nll, 1e-5 * row->nll);

  // kl_div(input = log q, target = log p, log_target) = p (log p - log q) elementwise.
  const at::Tensor per_pos = at::kl_div(logq, ref, at::Reduction::None, /*log_target=*/true)
                                 .sum(-1)
                                 .to(at::kDouble)
                                 .cpu();  // [39]
  ASSERT_EQ(row->chunk_kl.size(), 4u);
  EXPECT_NEAR(row->chunk_kl[0], 0, 1e-5);
  for (int64_t t = 0; t < 4; ++t) {
    const int64_t n = t < 3 ? 10 : 9;
    const double expect = per_pos.narrow(0, 10 * t, n).mean().item<double>();
    EXPECT_NEAR(row->chunk_kl[t], expect, 1e-5 + 1e-4 * expect) << "chunk " << t;
    if (t > 0) {
      EXPECT_GT(row->chunk_kl[t], 1e-4) << "chunk " << t;
    }
  }
  EXPECT_NEAR(row->kl, per_pos.mean().item<double>(), 1e-5 + 1e-4 * row->kl);
}

TEST_P(PplSweepKlTest, ReferenceOfTheWrongShapeIsAnError) {
  const std::vector<int32_t> tokens = Tokens(48);
  NextTokenLogProbs kl;
  kl.reference = FullForwardLogProbs(tokens, 30);  // [29, V], the window needs [39, V]
  auto row = EvaluateCompressedPerplexity(*model_, tokens, 40, Tova(10, 4), nullptr, kl);
  EXPECT_EQ(row.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(row.status().message()), HasSubstr("[39, n_vocab]"));
}

// The sweep: the no_compress row's distribution is the reference of its chunk size's rows; a
// resumed reference is recomputed; kl off gives no KL; JSON and markdown carry it.
TEST_P(PplSweepKlTest, SweepRowsCarryKlToTheirChunkSizesReference) {
  const std::vector<int32_t> tokens = Tokens(48);
  PplSweepOptions o;
  o.eval_len = 40;
  o.chunk_sizes = {10};
  o.memory_sizes = {4, 64};
  o.pruners = {"tova"};
  o.base.n_sink_tokens = 1;
  auto result = RunPplSweep(*model_, tokens, o);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->rows.size(), 3u);
  const PplRow& ref = result->rows[0];
  const PplRow& pruned = result->rows[1];  // M = 4
  const PplRow& whole = result->rows[2];   // M = 64: keeps everything
  ASSERT_TRUE(ref.has_kl && pruned.has_kl && whole.has_kl);
  EXPECT_EQ(ref.kl, 0);
  EXPECT_NEAR(whole.kl, 0, 1e-5);
  NextTokenLogProbs direct;
  direct.reference = FullForwardLogProbs(tokens, 40);
  auto expect = EvaluateCompressedPerplexity(*model_, tokens, 40, Tova(10, 4), nullptr, direct);
  ASSERT_TRUE(expect.ok()) << expect.status();
  EXPECT_GT(pruned.kl, 1e-4);
  EXPECT_NEAR(pruned.kl, expect->kl, 1e-5 + 1e-4 * expect->kl);

  nlohmann::json j = PplSweepToJson(*result);
  EXPECT_NEAR(j["rows"][1]["kl"].get<double>(), pruned.kl, 1e-12);
  EXPECT_EQ(j["rows"][1]["chunk_kl"].size(), 4u);
  EXPECT_THAT(PplSweepToMarkdown(*result), HasSubstr(absl::StrFormat("| %.4f |", pruned.kl)));

  // Resume with only the reference row done: the tova rows get the same KL (recomputed ref).
  o.previous_rows = nlohmann::json::array({j["rows"][0]});
  auto resumed = RunPplSweep(*model_, tokens, o);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_TRUE(resumed->rows[0].resumed);
  EXPECT_TRUE(resumed->rows[0].has_kl);
  EXPECT_NEAR(resumed->rows[1].kl, pruned.kl, 1e-9 + 1e-6 * pruned.kl);
  // Resuming every row keeps the KL the table had.
  o.previous_rows = j["rows"];
  auto again = RunPplSweep(*model_, tokens, o);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->rows[1].resumed);
  EXPECT_EQ(again->rows[1].kl, pruned.kl);

  o.previous_rows = nlohmann::json();
  o.kl = false;
  auto off = RunPplSweep(*model_, tokens, o);
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->rows[1].has_kl);
  EXPECT_TRUE(PplSweepToJson(*off)["rows"][1]["kl"].is_null());
}

INSTANTIATE_TEST_SUITE_P(Devices, PplSweepKlTest,
                         ::testing::ValuesIn(compress::testing::TestDevices()));

}  // namespace
}  // namespace ctxmem::eval
