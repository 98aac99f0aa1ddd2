#pragma once
// Chat templates: the model's Jinja template is recognised (not interpreted) and rendered by
// a small native implementation. Thread-safety: stateless functions.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace ctxmem::tokenizer {

enum class ChatTemplateKind {
  kChatML,  // <|im_start|>role\ncontent<|im_end|>\n (SmolLM2-Instruct, Qwen2)
};

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant"
  std::string content;
};

// Recognises the template from its Jinja source. InvalidArgument naming what was seen when
// it is none of the known kinds (so callers can ask for an explicit --chat-template).
absl::StatusOr<ChatTemplateKind> DetectChatTemplate(std::string_view jinja_source);

// Renders `messages` the way the model's template does (including a default system message
// when the template adds one, as SmolLM2's does) and, with `add_generation_prompt`, the
// opening of the assistant turn. `jinja_source` is used to find the default system prompt.
absl::StatusOr<std::string> ApplyChatTemplate(ChatTemplateKind kind, std::string_view jinja_source,
                                              const std::vector<ChatMessage>& messages,
                                              bool add_generation_prompt);

}  // namespace ctxmem::tokenizer
