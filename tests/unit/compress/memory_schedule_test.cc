#include "common/compress/memory_schedule.h"

#include <numeric>
#include <vector>

#include "gtest/gtest.h"

namespace ctxmem::compress {
namespace {

std::vector<int64_t> Targets(Schedule schedule, int64_t n, int64_t m) {
  std::vector<int64_t> out;
  for (int64_t t = 0; t < n; ++t) out.push_back(IncrementalMemoryTarget(schedule, t, n, m));
  return out;
}

// Spec §5.1 worked example: L=16384, C=2048, M=2048, so n=8 and a=256.
TEST(MemoryScheduleTest, ReproducesSpecWorkedExamples) {
  const int64_t n = 8, m = 2048;
  EXPECT_EQ(Targets(Schedule::kLinear, n, m),
            (std::vector<int64_t>{256, 512, 768, 1024, 1280, 1536, 1792, 2048}));
  EXPECT_EQ(Targets(Schedule::kSquare, n, m),
            (std::vector<int64_t>{256, 292, 402, 585, 841, 1170, 1572, 2048}));
  EXPECT_EQ(Targets(Schedule::kSqrt, n, m),
            (std::vector<int64_t>{256, 933, 1213, 1429, 1610, 1770, 1915, 2048}));
  EXPECT_EQ(Targets(Schedule::kInverseConvex, n, m),
            (std::vector<int64_t>{256, 292, 341, 409, 512, 682, 1024, 2048}));
  EXPECT_EQ(Targets(Schedule::kInverseConcave, n, m),
            (std::vector<int64_t>{256, 1280, 1621, 1792, 1894, 1962, 2011, 2048}));
}

TEST(MemoryScheduleTest, LastStepAndBeyondAreTheFullMemory) {
  EXPECT_EQ(IncrementalMemoryTarget(Schedule::kLinear, 7, 8, 2048), 2048);
  EXPECT_EQ(IncrementalMemoryTarget(Schedule::kSquare, 20, 8, 2048), 2048);
  // n = 1 (one chunk, or a stream of unknown length): M from the first step.
  EXPECT_EQ(IncrementalMemoryTarget(Schedule::kSqrt, 0, 1, 300), 300);
}

TEST(MemoryScheduleTest, TargetsNeverExceedTheLimit) {
  for (Schedule s : {Schedule::kLinear, Schedule::kSquare, Schedule::kSqrt,
                     Schedule::kInverseConvex, Schedule::kInverseConcave}) {
    for (int64_t n : {1, 2, 3, 7, 50}) {
      for (int64_t m : {0, 1, 5, 100, 1001}) {
        int64_t prev = 0;
        for (int64_t t = 0; t < n + 2; ++t) {
          const int64_t target = IncrementalMemoryTarget(s, t, n, m);
          EXPECT_GE(target, 0);
          EXPECT_LE(target, m);
          EXPECT_GE(target, prev) << "schedules never shrink: " << ScheduleName(s);
          prev = target;
        }
      }
    }
  }
}

TEST(MemoryScheduleTest, FixedIncrementalSharesSplitTheMemoryEvenly) {
  std::vector<int64_t> shares;
  for (int64_t t = 0; t < 6; ++t) shares.push_back(FixedIncrementalShare(t, 6, 20));
  EXPECT_EQ(shares, (std::vector<int64_t>{4, 4, 3, 3, 3, 3}));
  EXPECT_EQ(std::accumulate(shares.begin(), shares.end(), int64_t{0}), 20);
  // Past the plan: floor(M / n), at least one entry.
  EXPECT_EQ(FixedIncrementalShare(6, 6, 20), 3);
  EXPECT_EQ(FixedIncrementalShare(9, 6, 3), 1);
  EXPECT_EQ(FixedIncrementalShare(9, 6, 0), 0);
}

}  // namespace
}  // namespace ctxmem::compress
