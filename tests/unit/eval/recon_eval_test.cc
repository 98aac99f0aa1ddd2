#include "common/eval/recon_eval.h"

#include <gmock/gmock.h>

#include <cmath>
#include <memory>
#include <vector>

#include "common/eval/recon_bleu.h"
#include "common/model/model.h"
#include "gtest/gtest.h"
#include "tests/unit/test_files.h"

namespace ctxmem::eval {
namespace {

// Values from NLTK 3.10.4's sentence_bleu([ref], cand, smoothing_function=SmoothingFunction()
// .method1) on the same id lists.
TEST(Bleu4Test, MatchesNltkSentenceBleuMethod1) {
  const std::vector<int32_t> ref = {1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_NEAR(Bleu4(ref, ref), 1.0, 1e-12);
  EXPECT_NEAR(Bleu4({1, 2, 3, 4, 9, 6, 7, 8}, ref), 0.5, 1e-12);
  EXPECT_NEAR(Bleu4({1, 2, 3, 4, 5, 6}, ref), 0.7165313105737893, 1e-12);  // brevity penalty
  EXPECT_NEAR(Bleu4({8, 7, 6, 5, 4, 3, 2, 1}, ref), 0.046713797772820025, 1e-12);
  EXPECT_NEAR(Bleu4({1, 1, 1, 1, 2, 2, 2, 2, 3}, {1, 2, 3, 1, 2, 3, 1, 2, 3}), 0.08248720006399611,
              1e-12);
  EXPECT_EQ(Bleu4({}, ref), 0.0);
}

TEST(ReconEvalTest, RowsHaveTheSameEntriesAndSaneMetrics) {
  auto m = model::Model::Load(ctxmem::testing::TestDataPath("tiny/llama"));
  ASSERT_TRUE(m.ok()) << m.status();
  std::vector<int32_t> ids;
  for (int i = 0; i < 3 * 96; ++i) ids.push_back((i * 37) % 300);
  ReconOptions o;
  o.methods = {"stride", "streaming_llm", "tova", "no_compress"};
  o.window = 64;
  o.rate = 8;
  o.hint = 8;
  o.greedy_tokens = 16;
  o.continuation = 32;
  o.max_windows = 5;  // the text holds 3
  o.n_sinks = 2;
  auto rows = RunReconEval((*m)->transformer(), ids, o);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 4u);
  for (const ReconRow& r : *rows) {
    EXPECT_EQ(r.n_windows, 3) << r.method;
    EXPECT_EQ(r.entries, r.method == "no_compress" ? 64 : 8) << r.method;
    EXPECT_GE(r.token_accuracy, 0.0);
    EXPECT_LE(r.token_accuracy, 1.0);
    EXPECT_GE(r.bleu4, 0.0);
    EXPECT_LE(r.bleu4, 1.0);
    EXPECT_TRUE(std::isfinite(r.continuation_ppl) && r.continuation_ppl > 1) << r.method;
  }
  EXPECT_EQ((*rows)[0].bridge, "stride");
  auto again = RunReconEval((*m)->transformer(), ids, o);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)[1].token_accuracy, (*rows)[1].token_accuracy);  // deterministic
  auto j = ReconRowsToJson(*rows, o);
  EXPECT_EQ(j["rows"].size(), 4u);
  EXPECT_EQ(j["rows"][0]["bridge_id"], "stride");
  EXPECT_THAT(ReconRowsToMarkdown(*rows), ::testing::HasSubstr("| stride (stride) | 8 | 64 | 8 |"));
}

TEST(ReconEvalTest, BadOptionsAreInvalidArgument) {
  ReconOptions o;
  o.window = 100;
  o.rate = 8;
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  o = ReconOptions();
  o.methods = {"not_a_method"};
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  o = ReconOptions();
  o.rate = 128;  // 4 entries, 4 sinks
  EXPECT_EQ(o.Validate().code(), absl::StatusCode::kInvalidArgument);
  auto m = model::Model::Load(ctxmem::testing::TestDataPath("tiny/llama"));
  ASSERT_TRUE(m.ok());
  std::vector<int32_t> short_text(100, 5);
  EXPECT_EQ(RunReconEval((*m)->transformer(), short_text, ReconOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ctxmem::eval
