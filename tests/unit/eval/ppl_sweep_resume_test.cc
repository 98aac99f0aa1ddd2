// Resuming a perplexity sweep (PplSweepOptions::previous_rows) and its partial tables.

#include <ATen/ATen.h>

#include <string>
#include <vector>

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

PplSweepOptions Options() {
  PplSweepOptions o;
  o.eval_len = 32;
  o.chunk_sizes = {8};
  o.memory_sizes = {4};
  o.pruners = {"streaming_llm", "tova"};
  o.memory_types = {"FM", "IM"};
  return o;
}

class PplSweepResumeTest : public ::testing::Test {
 protected:
  void SetUp() override { model_ = compress::testing::MakeTinyTransformer(at::kCPU); }
  std::unique_ptr<model::Transformer> model_;
};

// Every progress call with a finished row carries the whole table: pending rows first marked,
// then filled in order. The partial JSON/markdown say what is pending.
TEST_F(PplSweepResumeTest, PartialTablesMarkPendingSettings) {
  const std::vector<int32_t> tokens = Tokens(32);
  std::vector<int64_t> pending_counts;
  std::string first_md;
  nlohmann::json first_json;
  auto result = RunPplSweep(*model_, tokens, Options(), [&](const PplSweepProgress& p) {
    if (p.table == nullptr) return;
    ASSERT_NE(p.finished, nullptr);
    EXPECT_EQ(p.table->rows.size(), 5u);
    int64_t pending = 0;
    for (const PplRow& r : p.table->rows) pending += r.pending ? 1 : 0;
    pending_counts.push_back(pending);
    if (first_md.empty()) {
      first_md = PplSweepToMarkdown(*p.table);
      first_json = PplSweepToJson(*p.table);
    }
  });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(pending_counts, (std::vector<int64_t>{4, 3, 2, 1, 0}));
  EXPECT_THAT(first_md, HasSubstr("1 of 5 settings done, 4 pending"));
  EXPECT_THAT(first_md, HasSubstr("| 8 | 4 | tova | IM | pending |"));
  EXPECT_TRUE(first_json["rows"][4]["pending"].get<bool>());
  EXPECT_FALSE(first_json["rows"][0]["pending"].get<bool>());
  const std::string md = PplSweepToMarkdown(*result);
  EXPECT_THAT(md, ::testing::Not(HasSubstr("pending")));
  for (const PplRow& r : result->rows) EXPECT_FALSE(r.load_average.empty());
}

// A rerun given the first run's rows reuses every finished one and runs only what was pending,
// with the same numbers as an uninterrupted run.
TEST_F(PplSweepResumeTest, ResumeRunsOnlyThePendingSettings) {
  const std::vector<int32_t> tokens = Tokens(32);
  auto full = RunPplSweep(*model_, tokens, Options());
  ASSERT_TRUE(full.ok()) << full.status();
  // An interrupted run: the table as it stood after 3 settings.
  nlohmann::json partial;
  int seen = 0;
  auto first = RunPplSweep(*model_, tokens, Options(), [&](const PplSweepProgress& p) {
    if (p.table != nullptr && ++seen == 3) partial = PplSweepToJson(*p.table);
  });
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(partial["rows"][3]["pending"].get<bool>());
  partial["rows"][1]["ppl"] = 123.0;  // proves the row is taken, not recomputed

  PplSweepOptions o = Options();
  o.previous_rows = partial["rows"];
  std::vector<bool> ran;
  auto resumed = RunPplSweep(*model_, tokens, o, [&](const PplSweepProgress& p) {
    if (p.finished != nullptr) ran.push_back(!p.finished->resumed);
  });
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(ran, (std::vector<bool>{false, false, false, true, true}));
  ASSERT_EQ(resumed->rows.size(), 5u);
  EXPECT_DOUBLE_EQ(resumed->rows[1].ppl, 123.0);
  for (int i : {0, 2, 3, 4}) {
    EXPECT_NEAR(resumed->rows[i].ppl, full->rows[i].ppl, 1e-6 * full->rows[i].ppl) << i;
    EXPECT_FALSE(resumed->rows[i].pending);
  }
  // Another M is another setting: nothing of the old table matches it.
  o.memory_sizes = {6};
  ran.clear();
  auto other = RunPplSweep(*model_, tokens, o, [&](const PplSweepProgress& p) {
    if (p.finished != nullptr) ran.push_back(!p.finished->resumed);
  });
  ASSERT_TRUE(other.ok());
  // The no_compress reference's config has memory_size = the first M, so it runs again too.
  EXPECT_EQ(ran, (std::vector<bool>{true, true, true, true, true}));
}

TEST_F(PplSweepResumeTest, MalformedPreviousRowsAreErrors) {
  const std::vector<int32_t> tokens = Tokens(32);
  PplSweepOptions o = Options();
  o.previous_rows = nlohmann::json::object();
  EXPECT_EQ(RunPplSweep(*model_, tokens, o).status().code(), absl::StatusCode::kInvalidArgument);
  auto full = RunPplSweep(*model_, tokens, Options());
  ASSERT_TRUE(full.ok());
  nlohmann::json rows = PplSweepToJson(*full)["rows"];
  rows[2].erase("ppl");
  o.previous_rows = rows;
  auto bad = RunPplSweep(*model_, tokens, o);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("malformed"));
}

}  // namespace
}  // namespace ctxmem::eval
