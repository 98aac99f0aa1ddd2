#include "common/tokenizer/pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

// Patterns are written in HF's spelling and rewritten once before compiling: `\s` / `\S`
// become explicit classes of the Unicode White_Space property. PCRE2's UCP `\s` also matches
// U+180E (MONGOLIAN VOWEL SEPARATOR, in its \h list), which Oniguruma, and so HF, does not.

namespace ctxmem::tokenizer {
namespace {

constexpr std::string_view kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kDigitRegex = R"(\p{N})";
constexpr std::string_view kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3})"
    R"(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N})"
    R"(| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Unicode White_Space, as the body of a character class.
constexpr std::string_view kWhiteSpaceClass =
    R"(\t-\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

struct NamedPreTokenizer {
  std::string_view name;
  std::array<std::string_view, 2> patterns;  // empty = unused
};

constexpr NamedPreTokenizer kPreTokenizers[] = {
    {"gpt2", {kGpt2Regex, {}}},
    {"default", {kGpt2Regex, {}}},
    {"smollm", {kDigitRegex, kGpt2Regex}},
    {"starcoder", {kDigitRegex, kGpt2Regex}},
    {"refact", {kDigitRegex, kGpt2Regex}},
    {"llama3", {kLlama3Regex, {}}},
    {"llama-bpe", {kLlama3Regex, {}}},
    {"llama-v3", {kLlama3Regex, {}}},
    {"falcon3", {kLlama3Regex, {}}},
    {"dbrx", {kLlama3Regex, {}}},
    {"smaug-bpe", {kLlama3Regex, {}}},
    {"qwen2", {kQwen2Regex, {}}},
    {"deepseek-r1-qwen", {kQwen2Regex, {}}},
};

// Rewrites `\s` and `\S` (inside and outside character classes) as White_Space classes.
std::string RewriteWhiteSpace(std::string_view pattern) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[i + 1];
      ++i;
      if (e == 's') {
        out.append(in_class ? "" : "[").append(kWhiteSpaceClass).append(in_class ? "" : "]");
      } else if (e == 'S' && !in_class) {
        out.append("[^").append(kWhiteSpaceClass).append("]");
      } else {
        out.push_back(c);
        out.push_back(e);
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out.push_back(c);
      // A ']' or '^]' right after '[' is a literal, not the end of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out.push_back(pattern[++i]);
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out.push_back(pattern[++i]);
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out.push_back(c);
  }
  return out;
}

std::string Pcre2ErrorMessage(int code) {
  std::array<PCRE2_UCHAR, 256> buffer{};
  if (pcre2_get_error_message(code, buffer.data(), buffer.size()) < 0) {
    return absl::StrCat("PCRE2 error ", code);
  }
  return std::string(reinterpret_cast<const char*>(buffer.data()));
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};
using MatchDataPtr = std::unique_ptr<pcre2_match_data, MatchDataDeleter>;

const NamedPreTokenizer* FindPreTokenizer(std::string_view name) {
  for (const NamedPreTokenizer& entry : kPreTokenizers) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

}  // namespace

struct PreTokenizer::Stage {
  pcre2_code* code = nullptr;  // owned
  ~Stage() { pcre2_code_free(code); }
};

PreTokenizer::~PreTokenizer() = default;

std::vector<std::string> PreTokenizer::KnownNames() {
  std::vector<std::string> names;
  for (const NamedPreTokenizer& entry : kPreTokenizers) names.emplace_back(entry.name);
  return names;
}

std::vector<std::string> PreTokenizer::PatternsOf(std::string_view name) {
  std::vector<std::string> patterns;
  const NamedPreTokenizer* entry = FindPreTokenizer(name);
  if (entry == nullptr) return patterns;
  for (std::string_view pattern : entry->patterns) {
    if (!pattern.empty()) patterns.emplace_back(pattern);
  }
  return patterns;
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizer::Create(std::string_view name) {
  const NamedPreTokenizer* entry = FindPreTokenizer(name);
  if (entry == nullptr) {
    return absl::InvalidArgumentError(absl::StrFormat("unknown pre-tokenizer \"%s\"; known: %s",
                                                      name, absl::StrJoin(KnownNames(), ", ")));
  }
  std::unique_ptr<PreTokenizer> pre(new PreTokenizer());
  pre->name_ = std::string(name);
  for (std::string_view pattern : entry->patterns) {
    if (pattern.empty()) continue;
    const std::string rewritten = RewriteWhiteSpace(pattern);
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    auto stage = std::make_unique<Stage>();
    stage->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()), rewritten.size(),
                                PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
    if (stage->code == nullptr) {
      return absl::InternalError(absl::StrFormat("pre-tokenizer \"%s\": regex %s: %s at offset %d",
                                                 name, rewritten, Pcre2ErrorMessage(error_code),
                                                 error_offset));
    }
    // JIT is an optimisation: without it (unsupported platform) the interpreter runs.
    (void)pcre2_jit_compile(stage->code, PCRE2_JIT_COMPLETE);
    pre->stages_.push_back(std::move(stage));
  }
  return pre;
}

absl::Status PreTokenizer::Split(std::string_view text, std::vector<TextRange>* pieces) const {
  pieces->clear();
  if (text.empty()) return absl::OkStatus();
  pieces->push_back({0, text.size()});
  std::vector<TextRange> next;
  const auto* subject_base = reinterpret_cast<PCRE2_SPTR>(text.data());
  for (const std::unique_ptr<Stage>& stage : stages_) {
    MatchDataPtr match(pcre2_match_data_create_from_pattern(stage->code, nullptr));
    if (match == nullptr) return absl::ResourceExhaustedError("PCRE2 match data allocation failed");
    next.clear();
    next.reserve(pieces->size() * 2);
    for (const TextRange& range : *pieces) {
      // Each piece is matched on its own, so lookaheads do not see past its end.
      const PCRE2_SPTR subject = subject_base + range.begin;
      const size_t length = range.end - range.begin;
      size_t gap_begin = 0;    // start of text not yet emitted, relative to the piece
      size_t search_from = 0;  // where the next match may start
      while (search_from < length) {
        int rc = pcre2_match(stage->code, subject, length, search_from, PCRE2_NO_UTF_CHECK,
                             match.get(), nullptr);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
          rc = pcre2_match(stage->code, subject, length, search_from,
                           PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, match.get(), nullptr);
        }
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
          return absl::InternalError(absl::StrFormat("pre-tokenizer \"%s\" at byte %d: %s", name_,
                                                     range.begin + search_from,
                                                     Pcre2ErrorMessage(rc)));
        }
        const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.get());
        const size_t match_begin = ovector[0];
        const size_t match_end = ovector[1];
        if (match_end <= match_begin) {
          // An empty match emits nothing; step over one character and search again.
          size_t step = 1;
          while (match_begin + step < length && (subject[match_begin + step] & 0xC0) == 0x80) {
            ++step;
          }
          search_from = match_begin + step;
          continue;
        }
        if (match_begin > gap_begin) {
          next.push_back({range.begin + gap_begin, range.begin + match_begin});
        }
        next.push_back({range.begin + match_begin, range.begin + match_end});
        gap_begin = search_from = match_end;
      }
      if (gap_begin < length) next.push_back({range.begin + gap_begin, range.end});
    }
    pieces->swap(next);
  }
  return absl::OkStatus();
}

}  // namespace ctxmem::tokenizer
