#include "common/tokenizer/byte_unicode.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace ctxmem::tokenizer {
namespace {

TEST(ByteUnicodeTest, MatchesGpt2Table) {
  EXPECT_EQ(ByteToUnicode(' '), "Ġ");
  EXPECT_EQ(ByteToUnicode('\n'), "Ċ");
  EXPECT_EQ(ByteToUnicode('a'), "a");
  EXPECT_EQ(ByteToUnicode(0x00), "Ā");
  EXPECT_EQ(ByteToUnicode(0xAD), "Ń");  // soft hyphen is remapped
  EXPECT_EQ(ByteToUnicode(0xE9), "é");  // printable Latin-1 stands for itself
  EXPECT_EQ(ByteFromCodePoint(0x120), 0x20);
  EXPECT_EQ(ByteFromCodePoint(0x20), -1);  // a raw space is not in the alphabet
  EXPECT_EQ(ByteFromCodePoint(0x144), -1);
  EXPECT_EQ(ByteFromCodePoint(0x1F917), -1);
}

TEST(ByteUnicodeTest, IsABijection) {
  std::set<std::string> spellings;
  for (int b = 0; b < 256; ++b) {
    const std::string spelled(ByteToUnicode(static_cast<uint8_t>(b)));
    spellings.insert(spelled);
    std::string raw;
    ASSERT_TRUE(DecodeByteLevel(spelled, &raw));
    ASSERT_EQ(raw, std::string(1, static_cast<char>(b)));
  }
  EXPECT_EQ(spellings.size(), 256u);
}

TEST(ByteUnicodeTest, RoundTripsAndRejectsForeignText) {
  const std::string bytes = "héllo 🤗\n\t\x01";
  std::string spelled;
  AppendByteLevel(bytes, &spelled);
  std::string raw = "prefix:";
  ASSERT_TRUE(DecodeByteLevel(spelled, &raw));
  EXPECT_EQ(raw, "prefix:" + bytes);
  std::string out = "kept";
  EXPECT_FALSE(DecodeByteLevel("a b", &out));  // raw space
  EXPECT_FALSE(DecodeByteLevel("中", &out));
  EXPECT_FALSE(DecodeByteLevel("\xff", &out));
  EXPECT_EQ(out, "kept");
}

}  // namespace
}  // namespace ctxmem::tokenizer
