#include "common/tokenizer/bpe_model.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/tokenizer/byte_unicode.h"

namespace ctxmem::tokenizer {
namespace {

// All 256 byte tokens (id = byte), then `extra` tokens from id 256.
std::vector<std::string> Vocab(const std::vector<std::string>& extra) {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.emplace_back(ByteToUnicode(static_cast<uint8_t>(b)));
  tokens.insert(tokens.end(), extra.begin(), extra.end());
  return tokens;
}

std::vector<int32_t> Encode(const BpeModel& model, std::string_view piece) {
  std::vector<int32_t> ids;
  model.EncodePiece(piece, &ids);
  return ids;
}

TEST(BpeModelTest, LowestRankMergesFirst) {
  // "abc": "b c" (rank 0) beats "a b" (rank 1), so the result is a + bc, not ab + c.
  auto model = BpeModel::Create(Vocab({"bc", "ab", "abc"}), {{"b", "c"}, {"a", "b"}}, {});
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(Encode(*model, "abc"), (std::vector<int32_t>{'a', 256}));
  EXPECT_EQ(Encode(*model, "ab"), (std::vector<int32_t>{257}));
  EXPECT_EQ(Encode(*model, ""), std::vector<int32_t>{});
}

TEST(BpeModelTest, EqualRanksMergeLeftmostFirst) {
  auto model = BpeModel::Create(Vocab({"aa"}), {{"a", "a"}}, {});
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(Encode(*model, "aaa"), (std::vector<int32_t>{256, 'a'}));
  EXPECT_EQ(Encode(*model, "aaaa"), (std::vector<int32_t>{256, 256}));
}

TEST(BpeModelTest, ChainsMergesAcrossNewPairs) {
  auto model =
      BpeModel::Create(Vocab({"Ġt", "he", "Ġthe"}), {{"Ġ", "t"}, {"h", "e"}, {"Ġt", "he"}}, {});
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(Encode(*model, " the"), (std::vector<int32_t>{258}));
  EXPECT_EQ(Encode(*model, " then"), (std::vector<int32_t>{258, 'n'}));
}

TEST(BpeModelTest, IgnoreMergesTakesWholeTokens) {
  // "abc" is a token but no merge path reaches it.
  const auto vocab = Vocab({"abc", "ab"});
  const std::vector<std::pair<std::string, std::string>> merges = {{"a", "b"}};
  auto plain = BpeModel::Create(vocab, merges, {});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(Encode(*plain, "abc"), (std::vector<int32_t>{257, 'c'}));
  BpeModel::Options options;
  options.ignore_merges = true;
  auto ignoring = BpeModel::Create(vocab, merges, options);
  ASSERT_TRUE(ignoring.ok());
  EXPECT_EQ(Encode(*ignoring, "abc"), (std::vector<int32_t>{256}));
  EXPECT_EQ(Encode(*ignoring, "abcab"), (std::vector<int32_t>{257, 'c', 257}));
}

TEST(BpeModelTest, MissingBytesUseUnkOrAreDropped) {
  std::vector<std::string> vocab = {"a", "<unk>"};
  auto dropping = BpeModel::Create(vocab, {}, {});
  ASSERT_TRUE(dropping.ok());
  EXPECT_EQ(Encode(*dropping, "xax"), (std::vector<int32_t>{0}));
  BpeModel::Options options;
  options.unk_id = 1;
  auto unk = BpeModel::Create(vocab, {}, options);
  ASSERT_TRUE(unk.ok());
  EXPECT_EQ(Encode(*unk, "xa"), (std::vector<int32_t>{1, 0}));
}

TEST(BpeModelTest, RejectsBadTables) {
  EXPECT_EQ(BpeModel::Create(Vocab({"a"}), {}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);  // "a" twice
  EXPECT_EQ(BpeModel::Create(Vocab({}), {{"a", "b"}}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);  // "ab" missing
  EXPECT_EQ(BpeModel::Create(Vocab({"ab"}), {{"a", "zz"}}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BpeModelTest, LooksUpTokens) {
  auto model = BpeModel::Create(Vocab({"Ġthe"}), {}, {});
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(model->TokenId("Ġthe"), 256);
  EXPECT_EQ(model->TokenId("Ġ"), ' ');
  EXPECT_EQ(model->TokenId("missing"), -1);
}

}  // namespace
}  // namespace ctxmem::tokenizer
