#include "common/compress/top_k.h"

#include <string>

#include "gtest/gtest.h"
#include "tests/unit/compress/test_util.h"

namespace ctxmem::compress {
namespace {

using testing::DeviceAvailable;
using testing::DeviceOf;
using testing::Mat;
using testing::Rows;

class TopKTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!DeviceAvailable(GetParam())) GTEST_SKIP() << GetParam() << " not available";
  }
  at::Tensor On(const at::Tensor& t) { return t.to(DeviceOf(GetParam())); }
};

TEST_P(TopKTest, KeepsLargestInAscendingOrder) {
  auto v = On(Mat({{0.1f, 0.9f, 0.3f, 0.7f, 0.5f}, {5.f, 4.f, 3.f, 2.f, 1.f}}));
  EXPECT_EQ(Rows(TopKIndices(v, 3)), (std::vector<std::vector<int64_t>>{{1, 3, 4}, {0, 1, 2}}));
}

// §12.5: on equal score the more recent entry (larger index) wins.
TEST_P(TopKTest, TiesGoToTheLargerIndex) {
  auto v = On(Mat({{1.f, 3.f, 3.f, 2.f, 3.f}}));
  EXPECT_EQ(Rows(TopKIndices(v, 1)), (std::vector<std::vector<int64_t>>{{4}}));
  EXPECT_EQ(Rows(TopKIndices(v, 2)), (std::vector<std::vector<int64_t>>{{2, 4}}));
  auto flat = On(Mat({{0.f, 0.f, 0.f, 0.f}}));
  EXPECT_EQ(Rows(TopKIndices(flat, 2)), (std::vector<std::vector<int64_t>>{{2, 3}}));
}

TEST_P(TopKTest, PreferSmallerBreaksTiesTheOtherWay) {
  auto v = On(Mat({{1.f, 3.f, 3.f, 2.f, 3.f}}));
  EXPECT_EQ(Rows(TopKIndices(v, 2, TieBreak::kPreferSmaller)),
            (std::vector<std::vector<int64_t>>{{1, 2}}));
}

TEST_P(TopKTest, ClampsK) {
  auto v = On(Mat({{1.f, 2.f, 3.f}}));
  EXPECT_EQ(Rows(TopKIndices(v, 10)), (std::vector<std::vector<int64_t>>{{0, 1, 2}}));
  EXPECT_EQ(TopKIndices(v, 0).size(1), 0);
  EXPECT_EQ(TopKIndices(v, -3).size(1), 0);
}

// Large rows with many ties give the same answer on every device.
TEST_P(TopKTest, ManyTiesAreDeterministic) {
  auto v = On(testing::Wave({3, 4096}, 0.5, 4.0).round());  // values in {-4..4}: heavy ties
  auto got = Rows(TopKIndices(v, 1000));
  auto cpu = Rows(TopKIndices(v.cpu(), 1000));
  EXPECT_EQ(got, cpu);
}

INSTANTIATE_TEST_SUITE_P(Devices, TopKTest, ::testing::ValuesIn(testing::TestDevices()));

}  // namespace
}  // namespace ctxmem::compress
