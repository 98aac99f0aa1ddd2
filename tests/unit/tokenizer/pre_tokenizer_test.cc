#include "common/tokenizer/pre_tokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/tokenizer/byte_unicode.h"
#include "tests/unit/tokenizer/tokenizer_goldens.h"

namespace ctxmem::tokenizer {
namespace {

using testing::Goldens;

// Pieces of `text`, spelled in the byte-level alphabet like HF's pre_tokenize_str output.
std::vector<std::string> SpelledPieces(const PreTokenizer& pre, const std::string& text) {
  std::vector<TextRange> ranges;
  const absl::Status status = pre.Split(text, &ranges);
  EXPECT_TRUE(status.ok()) << status;
  std::vector<std::string> pieces;
  size_t covered = 0;
  for (const TextRange& range : ranges) {
    EXPECT_EQ(range.begin, covered) << "pieces must cover the text in order";
    EXPECT_LT(range.begin, range.end) << "no empty pieces";
    covered = range.end;
    std::string spelled;
    AppendByteLevel(std::string_view(text).substr(range.begin, range.end - range.begin), &spelled);
    pieces.push_back(spelled);
  }
  EXPECT_EQ(covered, text.size());
  return pieces;
}

class PreTokenizerGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PreTokenizerGoldenTest, SplitsLikeHfTokenizers) {
  ASSERT_FALSE(Goldens().is_discarded());
  auto pre = PreTokenizer::Create(GetParam());
  ASSERT_TRUE(pre.ok()) << pre.status();
  const auto& cases = Goldens()["pre_tokenizers"][GetParam()];
  ASSERT_GE(cases.size(), 20u);
  for (const auto& golden : cases) {
    const std::string text = golden["text"].get<std::string>();
    EXPECT_EQ(SpelledPieces(**pre, text), golden["pieces"].get<std::vector<std::string>>())
        << GetParam() << " / " << golden["name"].get<std::string>();
  }
}

INSTANTIATE_TEST_SUITE_P(Names, PreTokenizerGoldenTest,
                         ::testing::Values("gpt2", "smollm", "llama3", "qwen2"),
                         [](const auto& info) { return info.param; });

TEST(PreTokenizerTest, SmollmSplitsEveryDigit) {
  auto pre = PreTokenizer::Create("smollm");
  ASSERT_TRUE(pre.ok());
  EXPECT_EQ(SpelledPieces(**pre, "ab 2024"),
            (std::vector<std::string>{"ab", "Ġ", "2", "0", "2", "4"}));
}

TEST(PreTokenizerTest, Llama3GroupsUpToThreeDigits) {
  auto pre = PreTokenizer::Create("llama-bpe");
  ASSERT_TRUE(pre.ok());
  EXPECT_EQ(SpelledPieces(**pre, "1234567"), (std::vector<std::string>{"123", "456", "7"}));
}

// Oniguruma's \s (HF) is Unicode White_Space; PCRE2's UCP \s would also take U+180E.
TEST(PreTokenizerTest, MongolianVowelSeparatorIsNotWhiteSpace) {
  auto pre = PreTokenizer::Create("gpt2");
  ASSERT_TRUE(pre.ok());
  EXPECT_EQ(SpelledPieces(**pre, "x  \u180e y"),
            (std::vector<std::string>{"x", "Ġ", "Ġáłİ", "Ġy"}));
}

TEST(PreTokenizerTest, AliasesShareRegexes) {
  EXPECT_EQ(PreTokenizer::PatternsOf("default"), PreTokenizer::PatternsOf("gpt2"));
  EXPECT_EQ(PreTokenizer::PatternsOf("llama-bpe"), PreTokenizer::PatternsOf("llama3"));
  EXPECT_EQ(PreTokenizer::PatternsOf("smollm").size(), 2u);
  EXPECT_TRUE(PreTokenizer::PatternsOf("nope").empty());
  for (const std::string& name : PreTokenizer::KnownNames()) {
    auto pre = PreTokenizer::Create(name);
    ASSERT_TRUE(pre.ok()) << name << ": " << pre.status();
    EXPECT_EQ((*pre)->name(), name);
  }
}

TEST(PreTokenizerTest, UnknownNameListsKnownNames) {
  auto pre = PreTokenizer::Create("gpt5");
  ASSERT_FALSE(pre.ok());
  EXPECT_EQ(pre.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(pre.status().message().find("gpt5"), std::string::npos);
  EXPECT_NE(pre.status().message().find("qwen2"), std::string::npos);
}

TEST(PreTokenizerTest, EmptyAndHugeRuns) {
  auto pre = PreTokenizer::Create("gpt2");
  ASSERT_TRUE(pre.ok());
  std::vector<TextRange> pieces{{1, 2}};
  ASSERT_TRUE((*pre)->Split("", &pieces).ok());
  EXPECT_TRUE(pieces.empty());
  // A 1 MB run of spaces before a word: "\s+(?!\S)" leaves the last space to the word.
  const std::string text = std::string(1 << 20, ' ') + "x";
  ASSERT_TRUE((*pre)->Split(text, &pieces).ok());
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(pieces[0].end, text.size() - 2);
}

}  // namespace
}  // namespace ctxmem::tokenizer
