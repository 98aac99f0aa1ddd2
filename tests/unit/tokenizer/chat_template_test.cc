#include "common/tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/tokenizer/tokenizer_goldens.h"

namespace ctxmem::tokenizer {
namespace {

using testing::Goldens;

std::vector<ChatMessage> Messages(const nlohmann::json& array) {
  std::vector<ChatMessage> messages;
  for (const auto& m : array) {
    messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return messages;
}

std::string SmolTemplate() {
  auto spec = TokenizerSpecFromJson(testing::SmolTokenizerJsonPath());
  return spec.ok() ? spec->chat_template : std::string();
}

TEST(ChatTemplateTest, RendersLikeTransformers) {
  ASSERT_FALSE(Goldens().is_discarded());
  const std::string source = SmolTemplate();
  ASSERT_FALSE(source.empty());
  auto kind = DetectChatTemplate(source);
  ASSERT_TRUE(kind.ok()) << kind.status();
  EXPECT_EQ(*kind, ChatTemplateKind::kChatML);
  ASSERT_EQ(Goldens()["chats"].size(), 3u);
  for (const auto& chat : Goldens()["chats"]) {
    auto rendered = ApplyChatTemplate(*kind, source, Messages(chat["messages"]),
                                      chat["add_generation_prompt"].get<bool>());
    ASSERT_TRUE(rendered.ok()) << rendered.status();
    EXPECT_EQ(*rendered, chat["rendered"].get<std::string>()) << chat["name"];
  }
}

TEST(ChatTemplateTest, DefaultSystemMessageWithEscapedNewlines) {
  // tokenizer_config.json templates often hold "\n" escapes inside Jinja strings.
  const std::string source =
      "{% if messages[0]['role'] != 'system' %}{{ \"<|im_start|>system\\nBe \\\"nice\\\".<|im_end|>"
      "\\n\" }}{% endif %}{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + "
      "m['content'] + '<|im_end|>\\n'}}{% endfor %}";
  auto rendered = ApplyChatTemplate(ChatTemplateKind::kChatML, source, {{"user", "hi"}}, true);
  ASSERT_TRUE(rendered.ok());
  EXPECT_EQ(*rendered,
            "<|im_start|>system\nBe \"nice\".<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, NoDefaultSystemMessage) {
  const std::string source =
      "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + "
      "'<|im_end|>' + '\\n'}}{% endfor %}";
  auto rendered = ApplyChatTemplate(ChatTemplateKind::kChatML, source, {{"user", "hi"}}, false);
  ASSERT_TRUE(rendered.ok());
  EXPECT_EQ(*rendered, "<|im_start|>user\nhi<|im_end|>\n");
  rendered = ApplyChatTemplate(ChatTemplateKind::kChatML, SmolTemplate(), {}, true);
  ASSERT_TRUE(rendered.ok());
  EXPECT_EQ(*rendered, "<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, UnknownTemplateIsInvalidArgument) {
  for (const std::string& source :
       {std::string(""), std::string("{{ bos_token }}[INST] {{ m }} [/INST]")}) {
    auto kind = DetectChatTemplate(source);
    ASSERT_FALSE(kind.ok());
    EXPECT_EQ(kind.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(kind.status().message().find("ChatML"), std::string::npos);
  }
}

}  // namespace
}  // namespace ctxmem::tokenizer
