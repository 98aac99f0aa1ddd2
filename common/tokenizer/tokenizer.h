#pragma once
// Byte-level BPE tokenizer (GPT-2 family: SmolLM2, Llama 3, Qwen2, Pythia) with the model's
// pre-tokenizer regex run by PCRE2 in Unicode mode, and special tokens matched verbatim.
// Thread-safety: const methods only; one instance may be shared by any number of threads.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/tokenizer/tokenizer_spec.h"

namespace ctxmem::tokenizer {

struct EncodeOptions {
  bool add_special = false;   // add BOS/EOS as the spec says (add_bos / add_eos)
  bool parse_special = true;  // "<|im_start|>" in the text becomes its control token
};

class Tokenizer {
 public:
  // InvalidArgument for an unknown pre-tokenizer, a merge naming unknown tokens, duplicate
  // tokens or special ids out of range.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Create(TokenizerSpec spec);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // InvalidArgument when `text` is not valid UTF-8 (the message gives the byte offset).
  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text,
                                              const EncodeOptions& options = {}) const;
  // Concatenated bytes of the tokens (may be invalid UTF-8 if the ids split a character;
  // invalid sequences are kept as raw bytes). InvalidArgument for an id out of range.
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids,
                                     bool skip_special = false) const;
  // Raw bytes of one token (control tokens give their text, e.g. "<|im_end|>").
  absl::StatusOr<std::string> TokenBytes(int32_t id) const;
  // id of an exact token text ("<|im_end|>"), or -1.
  int32_t TokenId(std::string_view token_text) const;

  int32_t n_vocab() const;
  int32_t bos_id() const;
  int32_t eos_id() const;
  bool IsControl(int32_t id) const;
  const TokenizerSpec& spec() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Turns a stream of token ids into UTF-8 text pieces, holding back bytes of a character that
// is not complete yet. Not thread-safe; one per generation stream.
class StreamingDecoder {
 public:
  // `tokenizer` must outlive this object.
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool skip_special = true);
  // Text that became complete with this token (may be empty). InvalidArgument for a bad id.
  absl::StatusOr<std::string> Push(int32_t id);
  // Whatever is still held back (incomplete UTF-8), with U+FFFD for each invalid sequence.
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  std::string pending_;  // bytes of an incomplete UTF-8 sequence
};

}  // namespace ctxmem::tokenizer
