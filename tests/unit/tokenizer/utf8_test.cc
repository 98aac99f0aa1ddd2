#include "common/tokenizer/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace ctxmem::tokenizer {
namespace {

constexpr char kFffd[] = "\xEF\xBF\xBD";

TEST(Utf8Test, FindsFirstInvalidByte) {
  EXPECT_EQ(FindInvalidUtf8(""), -1);
  EXPECT_EQ(FindInvalidUtf8("plain ascii"), -1);
  EXPECT_EQ(FindInvalidUtf8("日本 🤗 é"), -1);
  EXPECT_EQ(FindInvalidUtf8("\xF4\x8F\xBF\xBF"), -1);  // U+10FFFF
  EXPECT_EQ(FindInvalidUtf8("ab\x80"), 2);             // lone continuation
  EXPECT_EQ(FindInvalidUtf8("a\xC0\xAF"), 1);          // overlong
  EXPECT_EQ(FindInvalidUtf8("\xE0\x80\x80"), 0);       // overlong 3-byte
  EXPECT_EQ(FindInvalidUtf8("x\xED\xA0\x80"), 1);      // surrogate U+D800
  EXPECT_EQ(FindInvalidUtf8("\xF4\x90\x80\x80"), 0);   // above U+10FFFF
  EXPECT_EQ(FindInvalidUtf8("ok\xE6\x97"), 2);         // truncated
  EXPECT_EQ(FindInvalidUtf8(std::string("a\0b", 3)), -1);
}

TEST(Utf8Test, LossyReplacesMaximalSubparts) {
  EXPECT_EQ(Utf8Lossy("héllo"), "héllo");
  // Rust's from_utf8_lossy: E2 82 is one subpart, then 'A'.
  EXPECT_EQ(Utf8Lossy("\xE2\x82"
                      "A"),
            std::string(kFffd) + "A");
  EXPECT_EQ(Utf8Lossy("\x80\x80"), std::string(kFffd) + kFffd);
  EXPECT_EQ(Utf8Lossy("\xF0\x9F\xA4"), kFffd);
  EXPECT_EQ(Utf8Lossy("\xED\xA0\x80"), std::string(kFffd) + kFffd + kFffd);
  EXPECT_EQ(Utf8Lossy("\xFF"
                      "a"),
            std::string(kFffd) + "a");
}

TEST(Utf8Test, IncompleteTailLength) {
  EXPECT_EQ(IncompleteUtf8TailLength(""), 0u);
  EXPECT_EQ(IncompleteUtf8TailLength("abc"), 0u);
  EXPECT_EQ(IncompleteUtf8TailLength("a\xF0"), 1u);
  EXPECT_EQ(IncompleteUtf8TailLength("a\xF0\x9F"), 2u);
  EXPECT_EQ(IncompleteUtf8TailLength("a\xF0\x9F\xA4"), 3u);
  EXPECT_EQ(IncompleteUtf8TailLength("a\xF0\x9F\xA4\x97"), 0u);
  EXPECT_EQ(IncompleteUtf8TailLength("a\x80"), 0u);      // invalid, not incomplete
  EXPECT_EQ(IncompleteUtf8TailLength("a\xE0\x80"), 0u);  // can never become valid
  EXPECT_EQ(IncompleteUtf8TailLength("\xFF\xE6"), 1u);
}

TEST(Utf8Test, EncodeDecodeRoundTrip) {
  for (uint32_t cp : {0x24u, 0xA2u, 0x20ACu, 0x10348u, 0x10FFFFu}) {
    std::string text;
    AppendUtf8(cp, &text);
    EXPECT_EQ(FindInvalidUtf8(text), -1);
    uint32_t decoded = 0;
    EXPECT_EQ(DecodeUtf8Char(text, 0, &decoded), text.size());
    EXPECT_EQ(decoded, cp);
  }
}

}  // namespace
}  // namespace ctxmem::tokenizer
