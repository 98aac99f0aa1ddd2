#include "common/train/lr_schedule.h"

#include <gtest/gtest.h>

#include <cmath>

namespace ctxmem::train {
namespace {

TEST(LrScheduleTest, WarmsUpLinearlyThenDecaysToTheFloor) {
  auto s = LrSchedule::Create(1.0, 4, 14, 0.1);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_DOUBLE_EQ(s->At(0), 0.25);
  EXPECT_DOUBLE_EQ(s->At(3), 1.0);
  EXPECT_DOUBLE_EQ(s->At(4), 1.0);  // cosine starts at the peak
  EXPECT_NEAR(s->At(9), 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * 0.5)), 1e-12);  // half way
  EXPECT_NEAR(s->At(13), 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * 0.9)), 1e-12);
  EXPECT_DOUBLE_EQ(s->At(14), 0.1);
  EXPECT_DOUBLE_EQ(s->At(1000), 0.1);
  for (int64_t i = 4; i < 14; ++i) EXPECT_GE(s->At(i), s->At(i + 1)) << i;
}

TEST(LrScheduleTest, NoWarmupStartsAtThePeak) {
  auto s = LrSchedule::Create(2e-3, 0, 10, 0.0);
  ASSERT_TRUE(s.ok());
  EXPECT_DOUBLE_EQ(s->At(0), 2e-3);
  EXPECT_NEAR(s->At(10), 0.0, 1e-18);
}

TEST(LrScheduleTest, RejectsBadSettings) {
  EXPECT_FALSE(LrSchedule::Create(0, 1, 10).ok());
  EXPECT_FALSE(LrSchedule::Create(NAN, 1, 10).ok());
  EXPECT_FALSE(LrSchedule::Create(1, -1, 10).ok());
  EXPECT_FALSE(LrSchedule::Create(1, 1, 0).ok());
  EXPECT_FALSE(LrSchedule::Create(1, 1, 10, 1.5).ok());
}

}  // namespace
}  // namespace ctxmem::train
