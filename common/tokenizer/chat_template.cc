#include "common/tokenizer/chat_template.h"

#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"

// ChatML as the SmolLM2 / Qwen2 Jinja templates render it:
//   [<|im_start|>system\n{default}<|im_end|>\n]   when the first message is not "system"
//   <|im_start|>{role}\n{content}<|im_end|>\n       for every message
//   <|im_start|>assistant\n                         with add_generation_prompt
// The default system message is the text of the Jinja string literal that starts with
// "<|im_start|>system\n" and ends with "<|im_end|>\n" (escape sequences decoded), found only
// when the template tests `messages[0]['role'] != 'system'` / `== 'system'`.

namespace ctxmem::tokenizer {
namespace {

constexpr std::string_view kImStart = "<|im_start|>";
constexpr std::string_view kImEnd = "<|im_end|>";
constexpr std::string_view kImEndLine = "<|im_end|>\n";
constexpr std::string_view kSystemOpen = "<|im_start|>system\n";

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// Decodes the Jinja (Python-like) string literal whose opening quote is at `quote`. Returns the
// value and stores the index after the closing quote; nullopt when it is not closed.
std::optional<std::string> ReadStringLiteral(std::string_view source, size_t quote, size_t* end) {
  const char delimiter = source[quote];
  std::string value;
  for (size_t i = quote + 1; i < source.size(); ++i) {
    const char c = source[i];
    if (c == delimiter) {
      *end = i + 1;
      return value;
    }
    if (c != '\\' || i + 1 == source.size()) {
      value.push_back(c);
      continue;
    }
    const char e = source[++i];
    switch (e) {
      case 'n':
        value.push_back('\n');
        break;
      case 't':
        value.push_back('\t');
        break;
      case 'r':
        value.push_back('\r');
        break;
      case '\\':
        value.push_back('\\');
        break;
      case '\'':
        value.push_back('\'');
        break;
      case '"':
        value.push_back('"');
        break;
      default:  // Python keeps unknown escapes as written
        value.push_back('\\');
        value.push_back(e);
    }
  }
  return std::nullopt;
}

// The template's default system message, or nullopt when it adds none.
std::optional<std::string> DefaultSystemMessage(std::string_view source) {
  if (!Contains(source, "'system'") && !Contains(source, "\"system\"")) {
    return std::nullopt;
  }
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] != '\'' && source[i] != '"') continue;
    size_t end = 0;
    std::optional<std::string> literal = ReadStringLiteral(source, i, &end);
    if (!literal.has_value()) return std::nullopt;
    std::string_view body(*literal);
    if (body.starts_with(kSystemOpen) && body.ends_with(kImEndLine)) {
      body.remove_prefix(kSystemOpen.size());
      body.remove_suffix(kImEndLine.size());
      if (!Contains(body, kImEnd)) return std::string(body);
    }
    i = end - 1;
  }
  return std::nullopt;
}

void AppendTurn(std::string_view role, std::string_view content, std::string* out) {
  out->append(kImStart).append(role).append("\n").append(content).append(kImEndLine);
}

}  // namespace

absl::StatusOr<ChatTemplateKind> DetectChatTemplate(std::string_view jinja_source) {
  if (Contains(jinja_source, kImStart)) return ChatTemplateKind::kChatML;
  const std::string_view head = jinja_source.substr(0, 80);
  return absl::InvalidArgumentError(absl::StrFormat(
      "unrecognised chat template (%d bytes, starts \"%s\"); known: ChatML (<|im_start|>)",
      jinja_source.size(), absl::CHexEscape(absl::string_view(head.data(), head.size()))));
}

absl::StatusOr<std::string> ApplyChatTemplate(ChatTemplateKind kind, std::string_view jinja_source,
                                              const std::vector<ChatMessage>& messages,
                                              bool add_generation_prompt) {
  if (kind != ChatTemplateKind::kChatML) {
    return absl::InvalidArgumentError(
        absl::StrFormat("unknown chat template kind %d", static_cast<int>(kind)));
  }
  std::string out;
  if (!messages.empty() && messages[0].role != "system") {
    if (std::optional<std::string> system = DefaultSystemMessage(jinja_source)) {
      AppendTurn("system", *system, &out);
    }
  }
  for (const ChatMessage& message : messages) AppendTurn(message.role, message.content, &out);
  if (add_generation_prompt) out.append(kImStart).append("assistant\n");
  return out;
}

}  // namespace ctxmem::tokenizer
