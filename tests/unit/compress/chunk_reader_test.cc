#include "common/compress/chunk_reader.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace ctxmem::compress {
namespace {

// A stream that hands out at most `max_per_read` tokens per Read (like a network source).
class TricklingSource final : public TokenSource {
 public:
  TricklingSource(std::vector<int32_t> tokens, int64_t max_per_read)
      : tokens_(std::move(tokens)), max_per_read_(max_per_read) {}
  absl::StatusOr<int64_t> Read(int64_t max_tokens, std::vector<int32_t>* out) override {
    int64_t n = std::min<int64_t>(
        {max_tokens, max_per_read_, static_cast<int64_t>(tokens_.size()) - next_});
    out->insert(out->end(), tokens_.begin() + next_, tokens_.begin() + next_ + n);
    next_ += n;
    return n;
  }
  int64_t total_length() const override { return -1; }

 private:
  std::vector<int32_t> tokens_;
  int64_t max_per_read_;
  int64_t next_ = 0;
};

std::vector<int32_t> Iota(int n) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

TEST(ChunkReaderTest, FullChunksAndTheTrueLastOneFromATricklingStream) {
  TricklingSource source(Iota(10), /*max_per_read=*/3);
  ChunkReader reader(source);
  std::vector<int32_t> chunk;
  bool is_last = true;
  ASSERT_TRUE(reader.Next(4, &chunk, &is_last).ok());
  EXPECT_EQ(chunk, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_FALSE(is_last);
  ASSERT_TRUE(reader.Next(4, &chunk, &is_last).ok());
  EXPECT_EQ(chunk, (std::vector<int32_t>{4, 5, 6, 7}));
  EXPECT_FALSE(is_last);
  ASSERT_TRUE(reader.Next(4, &chunk, &is_last).ok());
  EXPECT_EQ(chunk, (std::vector<int32_t>{8, 9}));
  EXPECT_TRUE(is_last);
  ASSERT_TRUE(reader.Next(4, &chunk, &is_last).ok());
  EXPECT_TRUE(chunk.empty());
  EXPECT_TRUE(is_last);
}

TEST(ChunkReaderTest, ExactMultipleIsLastWithoutAnEmptyChunk) {
  std::vector<int32_t> tokens = Iota(8);
  SpanTokenSource source(tokens, /*announce_length=*/false);
  ChunkReader reader(source);
  std::vector<int32_t> chunk;
  bool is_last = false;
  ASSERT_TRUE(reader.Next(4, &chunk, &is_last).ok());
  EXPECT_FALSE(is_last);
  ASSERT_TRUE(reader.Next(4, &chunk, &is_last).ok());
  EXPECT_EQ(chunk, (std::vector<int32_t>{4, 5, 6, 7}));
  EXPECT_TRUE(is_last);  // known from the lookahead, not from a later empty read
}

TEST(ChunkReaderTest, ChunkSizesMayChange) {  // IMDC's decremental chunks
  std::vector<int32_t> tokens = Iota(7);
  SpanTokenSource source(tokens);
  ChunkReader reader(source);
  std::vector<int32_t> chunk;
  bool is_last = false;
  ASSERT_TRUE(reader.Next(5, &chunk, &is_last).ok());
  EXPECT_EQ(chunk.size(), 5u);
  ASSERT_TRUE(reader.Next(1, &chunk, &is_last).ok());
  EXPECT_EQ(chunk, (std::vector<int32_t>{5}));
  EXPECT_FALSE(is_last);
  ASSERT_TRUE(reader.Next(1, &chunk, &is_last).ok());
  EXPECT_EQ(chunk, (std::vector<int32_t>{6}));
  EXPECT_TRUE(is_last);
}

}  // namespace
}  // namespace ctxmem::compress
