#include "common/tokenizer/special_token_matcher.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ctxmem::tokenizer {
namespace {

using Segment = SpecialTokenMatcher::Segment;

std::vector<std::string> Describe(std::string_view text, const std::vector<Segment>& segments) {
  std::vector<std::string> out;
  for (const Segment& s : segments) {
    out.push_back((s.id >= 0 ? std::to_string(s.id) + ":" : std::string("text:")) +
                  std::string(text.substr(s.begin, s.end - s.begin)));
  }
  return out;
}

TEST(SpecialTokenMatcherTest, LeftmostLongest) {
  SpecialTokenMatcher matcher;
  matcher.Add("<|im_start|>", 1, true);
  matcher.Add("<|im", 7, true);
  matcher.Add("<think>", 9, false);
  std::vector<Segment> segments;
  const std::string text = "a<|im_start|>b<|im<think>";
  matcher.Split(text, /*match_control=*/true, &segments);
  EXPECT_EQ(Describe(text, segments), (std::vector<std::string>{"text:a", "1:<|im_start|>",
                                                                "text:b", "7:<|im", "9:<think>"}));
  matcher.Split(text, /*match_control=*/false, &segments);
  EXPECT_EQ(Describe(text, segments),
            (std::vector<std::string>{"text:a<|im_start|>b<|im", "9:<think>"}));
}

TEST(SpecialTokenMatcherTest, IgnoresEmptyAndInvalidTokens) {
  SpecialTokenMatcher matcher;
  matcher.Add("", 1, true);
  matcher.Add("\xE6", 2, true);
  EXPECT_EQ(matcher.size(), 0u);
  std::vector<Segment> segments;
  matcher.Split("", true, &segments);
  EXPECT_TRUE(segments.empty());
  matcher.Split("plain", true, &segments);
  ASSERT_EQ(segments.size(), 1u);
  EXPECT_EQ(segments[0].id, -1);
}

}  // namespace
}  // namespace ctxmem::tokenizer
