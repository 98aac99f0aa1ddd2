#pragma once
// Finds added tokens (control tokens such as "<|im_start|>" and user-defined tokens) in text,
// verbatim, before pre-tokenization. Matches are leftmost-longest, like the Aho-Corasick
// automaton of HF `tokenizers`' AddedVocabulary.
// Thread-safety: const methods only; one instance may be shared by any number of threads.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ctxmem::tokenizer {

class SpecialTokenMatcher {
 public:
  // A span of the text: an added token (`id` >= 0) or plain text to pre-tokenize (`id` == -1).
  struct Segment {
    size_t begin = 0;  // bytes, [begin, end)
    size_t end = 0;
    int32_t id = -1;
  };

  // Adds a token. Empty texts and texts that are not valid UTF-8 are ignored (they could
  // split a character of valid input). Not thread-safe: build before sharing.
  void Add(std::string_view text, int32_t id, bool is_control);

  // Replaces `segments` with the segments of `text`, in order, covering all of it. Control
  // tokens are matched only with `match_control`; user-defined tokens always are.
  void Split(std::string_view text, bool match_control, std::vector<Segment>* segments) const;

  size_t size() const { return n_tokens_; }

 private:
  struct Entry {
    std::string text;
    int32_t id = 0;
    bool is_control = false;
  };

  // entries_by_first_byte_[b]: tokens starting with byte b, longest first.
  std::array<std::vector<Entry>, 256> entries_by_first_byte_;
  size_t n_tokens_ = 0;
};

}  // namespace ctxmem::tokenizer
