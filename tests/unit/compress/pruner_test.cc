#include "common/compress/pruner.h"

#include <ATen/ops/full.h>

#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/compress/test_util.h"

namespace ctxmem::compress {
namespace {

using ::testing::HasSubstr;
using testing::Rows;
using Idx = std::vector<std::vector<int64_t>>;

// A pruner whose rank is given by the test.
class FixedRankPruner final : public Pruner {
 public:
  explicit FixedRankPruner(at::Tensor rank, bool scores = false)
      : rank_(std::move(rank)), scores_(scores) {}
  std::string_view name() const override { return "fixed"; }
  bool needs_scores() const override { return scores_; }

 protected:
  at::Tensor Rank(const PruneInput&) const override { return rank_; }

 private:
  at::Tensor rank_;
  bool scores_;
};

PruneInput Input(int64_t n_kv_heads, int64_t n, int64_t target) {
  PruneInput in;
  in.n_kv_heads = n_kv_heads;
  in.n_chunk = n;
  in.target = target;
  in.src = testing::SrcRange(n_kv_heads, 0, n);
  return in;
}

TEST(PrunerTest, SelectReturnsSortedIndicesAndTheirRanks) {
  FixedRankPruner p(testing::Mat({{0.5f, 0.1f, 0.9f, 0.3f}}));
  auto sel = p.Select(Input(1, 4, 2));
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(Rows(sel->indices), (Idx{{0, 2}}));
  EXPECT_FLOAT_EQ(sel->rank[0][1].item<float>(), 0.9f);
}

TEST(PrunerTest, NanRanksAreKeptLast) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  FixedRankPruner p(testing::Mat({{nan, 0.1f, 0.2f}}));
  auto sel = p.Select(Input(1, 3, 2));
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(Rows(sel->indices), (Idx{{1, 2}}));
}

TEST(PrunerTest, NoCandidatesGiveAnEmptySelection) {
  FixedRankPruner p(testing::Mat({{0.f}}));
  auto sel = p.Select(Input(2, 0, 5));
  ASSERT_TRUE(sel.ok()) << sel.status();
  EXPECT_EQ(sel->indices.size(0), 2);
  EXPECT_EQ(sel->indices.size(1), 0);
}

TEST(PrunerTest, RejectsMismatchedShapesNamingTheField) {
  FixedRankPruner p(testing::Mat({{0.f, 0.f, 0.f}}), /*scores=*/true);
  PruneInput in = Input(1, 3, 1);
  auto missing = p.Select(in);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("scores is undefined, expected [1"));
  in.scores = at::full({1, 2, 4}, 0.1f);
  EXPECT_THAT(p.Select(in).status().message(), HasSubstr("scores is [1, 2, 4]"));
  in = Input(1, 3, 1);
  in.n_memory = 1;
  in.n_chunk = 2;
  EXPECT_THAT(p.Select(in).status().message(), HasSubstr("memory_rank is undefined"));
  in = Input(1, 3, -1);
  EXPECT_THAT(p.Select(in).status().message(), HasSubstr("target=-1"));
}

TEST(PrunerTest, BadRankShapeIsAnInternalError) {
  FixedRankPruner p(testing::Mat({{0.f, 0.f}}));
  auto sel = p.Select(Input(1, 3, 1));
  ASSERT_FALSE(sel.ok());
  EXPECT_EQ(sel.status().code(), absl::StatusCode::kInternal);
}

TEST(PrunerTest, PrependsHiddenMemoryRank) {
  PruneInput in = Input(1, 3, 1);
  in.n_memory = 2;
  in.n_chunk = 1;
  in.memory_hidden = true;
  in.memory_rank = testing::Mat({{0.7f, 0.2f}});
  auto rank = PrependHiddenMemoryRank(in, testing::Mat({{0.5f}}));
  EXPECT_EQ(rank.size(1), 3);
  EXPECT_FLOAT_EQ(rank[0][0].item<float>(), 0.7f);
  EXPECT_EQ(ScoredMemoryColumns(in), 0);
  in.memory_hidden = false;
  EXPECT_EQ(ScoredMemoryColumns(in), 2);
}

}  // namespace
}  // namespace ctxmem::compress
