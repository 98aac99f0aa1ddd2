#include "common/compress/token_source.h"

#include <vector>

#include "gtest/gtest.h"

namespace ctxmem::compress {
namespace {

TEST(SpanTokenSourceTest, ReadsInPiecesUntilTheEnd) {
  std::vector<int32_t> tokens = {1, 2, 3, 4, 5};
  SpanTokenSource source(tokens);
  EXPECT_EQ(source.total_length(), 5);
  std::vector<int32_t> out;
  EXPECT_EQ(*source.Read(2, &out), 2);
  EXPECT_EQ(*source.Read(10, &out), 3);
  EXPECT_EQ(*source.Read(10, &out), 0);
  EXPECT_EQ(*source.Read(10, &out), 0);
  EXPECT_EQ(out, tokens);
}

TEST(SpanTokenSourceTest, CanHideItsLength) {
  std::vector<int32_t> tokens = {1, 2, 3};
  SpanTokenSource source(tokens, /*announce_length=*/false);
  EXPECT_EQ(source.total_length(), -1);
}

}  // namespace
}  // namespace ctxmem::compress
