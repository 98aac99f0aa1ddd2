#include "common/compress/compression_config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ctxmem::compress {
namespace {

using ::testing::HasSubstr;

TEST(CompressionConfigTest, ParsesShortAndSeedMemoryTypeNames) {
  struct Case {
    const char* name;
    MemoryType type;
    bool decremental;
  };
  for (const Case& c :
       {Case{"FM", MemoryType::kFm, false}, Case{"Chunk_Streaming", MemoryType::kFm, false},
        Case{"IM", MemoryType::kIm, false},
        Case{"Incremental_Chunk_Streaming_Dynamic_History", MemoryType::kIm, false},
        Case{"IMDC", MemoryType::kIm, true},
        Case{"FIXED_INCREMENTAL", MemoryType::kFixedIncremental, false},
        Case{"Incremental_Chunk_Streaming_Fixed_History", MemoryType::kFixedIncremental, false},
        Case{"DOUBLE_COMPRESS", MemoryType::kDoubleCompress, false},
        Case{"dynamic_incremental_double_compress", MemoryType::kDoubleCompress, false}}) {
    auto parsed = ParseMemoryType(c.name);
    ASSERT_TRUE(parsed.ok()) << c.name;
    EXPECT_EQ(parsed->type, c.type) << c.name;
    EXPECT_EQ(parsed->decremental_chunk, c.decremental) << c.name;
  }
  EXPECT_EQ(MemoryTypeName(MemoryType::kIm, true), "IMDC");
  EXPECT_EQ(MemoryTypeName(MemoryType::kFixedIncremental), "FIXED_INCREMENTAL");
}

TEST(CompressionConfigTest, UnknownNamesListTheValidOnes) {
  auto mt = ParseMemoryType("dual_memory");
  ASSERT_FALSE(mt.ok());
  EXPECT_EQ(mt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(mt.status().message(), HasSubstr("FM, IM, IMDC"));
  auto s = ParseSchedule("cubic");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(),
              HasSubstr("linear, square, sqrt, inverse_convex, inverse_concave"));
  EXPECT_THAT(ParsePositionMode("absolute").status().message(), HasSubstr("slots, original"));
  EXPECT_THAT(ParseScoreMode("fast").status().message(), HasSubstr("exact, window"));
  EXPECT_EQ(*ParseSchedule("inverse_concave"), Schedule::kInverseConcave);
  EXPECT_EQ(*ParsePositionMode("original"), PositionMode::kOriginal);
  EXPECT_EQ(*ParseScoreMode("window"), ScoreMode::kWindow);
}

TEST(CompressionConfigTest, DefaultsAreValid) { EXPECT_TRUE(CompressionConfig{}.Validate().ok()); }

TEST(CompressionConfigTest, ValidateNamesTheOffendingField) {
  auto expect_error = [](CompressionConfig c, const char* needle) {
    absl::Status s = c.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << needle;
    EXPECT_THAT(s.message(), HasSubstr(needle));
  };
  CompressionConfig c;
  c.pruner = "perceiverr";
  expect_error(c, "known: chunk_prefix, conv, h2o");
  c = {};
  c.chunk_size = 0;
  expect_error(c, "chunk_size=0");
  c = {};
  c.memory_size = -1;
  expect_error(c, "memory_size=-1");
  c = {};
  c.decremental_chunk = true;
  expect_error(c, "memory_type=FM");
  c = {};
  c.conv_kernel_size = 4;
  expect_error(c, "conv_kernel_size=4");
  c = {};
  c.score_mode = ScoreMode::kWindow;
  c.score_window = 0;
  expect_error(c, "score_window=0");
  c = {};
  c.memory_type = MemoryType::kDoubleCompress;
  expect_error(c, "double_compress_size=0");
  c.double_compress_size = 1000;
  expect_error(c, "memory_size=256");
  c = {};
  c.n_sink_tokens = -2;
  expect_error(c, "n_sink_tokens=-2");
}

TEST(CompressionConfigTest, AcceptsSnapkvAliasAndZeroSinks) {
  CompressionConfig c;
  c.pruner = "snapkv";
  c.n_sink_tokens = 0;
  c.memory_type = MemoryType::kIm;
  c.decremental_chunk = true;
  EXPECT_TRUE(c.Validate().ok()) << c.Validate();
}

}  // namespace
}  // namespace ctxmem::compress
