#pragma once
// Splits text into the pieces that byte-level BPE encodes one at a time, with the regexes of
// a named pre-tokenizer (as GGUF `tokenizer.ggml.pre` names them), run by PCRE2 in UTF + UCP
// mode. A pre-tokenizer is a list of regexes; each one splits every piece left by the one
// before into its matches and the text between them (HF `Split(behavior=Isolated)`).
// Thread-safety: const methods only; one instance may be shared by any number of threads.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ctxmem::tokenizer {

// A piece of the text: bytes [begin, end).
struct TextRange {
  size_t begin = 0;
  size_t end = 0;
};

class PreTokenizer {
 public:
  // Names and what they run (HF `tokenizers` regexes; `\s` is Unicode White_Space, as in
  // Oniguruma, which HF uses):
  //   "gpt2", "default"                 GPT-2's regex (HF ByteLevel use_regex=true)
  //   "smollm", "starcoder", "refact"   each \p{N} alone, then GPT-2's regex
  //   "llama3", "llama-bpe", "llama-v3", "falcon3", "dbrx", "smaug-bpe"   Llama 3's regex
  //   "qwen2", "deepseek-r1-qwen"       Qwen2's regex (single digits)
  // InvalidArgument listing the known names for any other name.
  static absl::StatusOr<std::unique_ptr<PreTokenizer>> Create(std::string_view name);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Replaces `pieces` with the pieces of `text`, in order, covering all of it. `text` must be
  // valid UTF-8 (the caller checks; PCRE2 runs without its own check). Internal when PCRE2
  // fails to match (it does not for these patterns).
  absl::Status Split(std::string_view text, std::vector<TextRange>* pieces) const;

  const std::string& name() const { return name_; }
  // Every name Create() accepts.
  static std::vector<std::string> KnownNames();
  // The regex patterns (PCRE2 syntax) of a known pre-tokenizer, in order; empty when unknown.
  static std::vector<std::string> PatternsOf(std::string_view name);

 private:
  struct Stage;  // one compiled regex
  PreTokenizer() = default;

  std::string name_;
  std::vector<std::unique_ptr<Stage>> stages_;
};

}  // namespace ctxmem::tokenizer
