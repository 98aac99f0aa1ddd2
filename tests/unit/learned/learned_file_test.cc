#include "common/learned/learned_file.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

namespace ctxmem::learned {
namespace {

TEST(LearnedFileTest, SplitLayerNameTakesOnlyPrefixDigitsDotPart) {
  int64_t layer = -1;
  std::string part;
  ASSERT_TRUE(LearnedFile::SplitLayerName("layers.12.wq.weight", "layers.", &layer, &part));
  EXPECT_EQ(layer, 12);
  EXPECT_EQ(part, "wq.weight");
  ASSERT_TRUE(LearnedFile::SplitLayerName("proj.0.up", "proj.", &layer, &part));
  EXPECT_EQ(layer, 0);
  EXPECT_EQ(part, "up");
  // Another prefix, no number, a sign, no dot after the number, an overflowing number.
  EXPECT_FALSE(LearnedFile::SplitLayerName("proj.1.up", "layers.", &layer, &part));
  EXPECT_FALSE(LearnedFile::SplitLayerName("layers..wq", "layers.", &layer, &part));
  EXPECT_FALSE(LearnedFile::SplitLayerName("layers.-1.wq", "layers.", &layer, &part));
  EXPECT_FALSE(LearnedFile::SplitLayerName("layers.3", "layers.", &layer, &part));
  EXPECT_FALSE(
      LearnedFile::SplitLayerName("layers.99999999999999999999.wq", "layers.", &layer, &part));
}

TEST(LearnedFileTest, ShapeStringNamesTheShapeOrMissing) {
  EXPECT_EQ(LearnedFile::ShapeString(at::zeros({2, 3})), "[2, 3]");
  EXPECT_EQ(LearnedFile::ShapeString(at::Tensor()), "missing");
}

}  // namespace
}  // namespace ctxmem::learned
