#include "common/compress/chunk_planner.h"

#include <numeric>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ctxmem::compress {
namespace {

using ::testing::HasSubstr;

CompressionConfig Imdc(int64_t chunk, int64_t memory, Schedule schedule = Schedule::kLinear) {
  CompressionConfig c;
  c.memory_type = MemoryType::kIm;
  c.decremental_chunk = true;
  c.chunk_size = chunk;
  c.memory_size = memory;
  c.schedule = schedule;
  return c;
}

// Spec §5.3 example: L=16384, C=2048, M=2048, linear.
TEST(ChunkPlannerTest, ReproducesSpecDecrementalExample) {
  auto plan = ChunkPlan::Create(Imdc(2048, 2048), 16384);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->basis(), PlanBasis::kTotalLength);
  EXPECT_TRUE(plan->decremental());
  EXPECT_EQ(plan->n_steps(), 8);
  EXPECT_EQ(plan->planned_sizes(),
            (std::vector<int64_t>{2048, 2816, 2560, 2304, 2048, 1792, 1536, 1280}));
}

TEST(ChunkPlannerTest, DecrementalKeepsMemoryPlusChunkConstant) {
  const int64_t length = 30, chunk = 5, memory = 12;  // n=6, c̄=5, m̄=6
  auto plan = ChunkPlan::Create(Imdc(chunk, memory), length);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const auto& sizes = plan->planned_sizes();
  EXPECT_EQ(sizes, (std::vector<int64_t>{5, 9, 7, 5, 3, 1}));
  EXPECT_EQ(std::accumulate(sizes.begin(), sizes.end(), int64_t{0}), length);
  // §5.3 invariant: m_{i-1} + size_i = c̄ + m̄ for i >= 1.
  const std::vector<int64_t> m = {2, 4, 6, 8, 10};
  for (size_t i = 1; i < sizes.size(); ++i) EXPECT_EQ(m[i - 1] + sizes[i], 11) << i;
}

TEST(ChunkPlannerTest, FixedChunksEndWithTheRemainder) {
  CompressionConfig c;
  c.chunk_size = 4;
  auto plan = ChunkPlan::Create(c, 10);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_FALSE(plan->decremental());
  EXPECT_EQ(plan->planned_sizes(), (std::vector<int64_t>{4, 4, 2}));
  EXPECT_EQ(plan->n_steps(), 3);
}

TEST(ChunkPlannerTest, OneChunkWhenTheInputFitsInIt) {
  auto plan = ChunkPlan::Create(Imdc(2048, 512), 1000);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->planned_sizes(), (std::vector<int64_t>{1000}));
  EXPECT_EQ(plan->n_steps(), 1);
}

TEST(ChunkPlannerTest, RejectsNonPositiveChunksNamingTheValues) {
  // n=10, a=100: size_6 = 10 + 500 - 600 < 0 (§12.8).
  auto plan = ChunkPlan::Create(Imdc(10, 1000), 100);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(plan.status().message(), HasSubstr("total_length=100"));
  EXPECT_THAT(plan.status().message(), HasSubstr("chunk_size=10"));
  EXPECT_THAT(plan.status().message(), HasSubstr("memory_size=1000"));
  EXPECT_THAT(plan.status().message(), HasSubstr("schedule=linear"));
}

TEST(ChunkPlannerTest, StreamUsesExpectedLengthAndThenTheSteadySize) {
  CompressionConfig c = Imdc(2048, 2048);
  c.expected_length = 16384;
  auto plan = ChunkPlan::Create(c, /*total_length=*/-1);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->basis(), PlanBasis::kExpectedLength);
  EXPECT_EQ(plan->chunk_size(1), 2816);
  // Past the plan the memory is full: chunk = c̄ + m̄ - M = 2048 + 1024 - 2048.
  EXPECT_EQ(plan->chunk_size(8), 1024);
  EXPECT_EQ(plan->chunk_size(100), 1024);
  EXPECT_THAT(plan->Describe(), HasSubstr("expected_length=16384"));
}

TEST(ChunkPlannerTest, StreamWithoutExpectationFallsBackToFixedChunks) {
  CompressionConfig c = Imdc(256, 128);
  auto plan = ChunkPlan::Create(c, -1);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->basis(), PlanBasis::kUnknownLength);
  EXPECT_FALSE(plan->decremental());
  EXPECT_EQ(plan->n_steps(), 1);
  EXPECT_EQ(plan->chunk_size(0), 256);
  EXPECT_EQ(plan->chunk_size(7), 256);
  EXPECT_THAT(plan->Describe(), HasSubstr("unknown length"));
}

TEST(ChunkPlannerTest, KnownTotalLengthWinsOverExpectedLength) {
  CompressionConfig c;
  c.chunk_size = 4;
  c.expected_length = 100;
  auto plan = ChunkPlan::Create(c, 8);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->basis(), PlanBasis::kTotalLength);
  EXPECT_EQ(plan->planned_sizes(), (std::vector<int64_t>{4, 4}));
}

}  // namespace
}  // namespace ctxmem::compress
