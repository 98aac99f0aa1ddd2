#pragma once
// TextWindows: fixed-length token windows drawn reproducibly from a folder of books, the
// training and validation data of the learned compressors (docs/training.md).
//
// Layout: DIR/<split>/*.txt (split = "train" | "validation"), one book per file, as
// tools/fetch_training_text.py writes them (DIR/manifest.json records package, version and
// licence per file). Every file is tokenized whole with the model's tokenizer (no special
// tokens); a model without a tokenizer (the tiny test checkpoints) reads UTF-8 bytes as ids,
// which needs n_vocab >= 256. Windows never cross a book boundary; books shorter than a window
// are skipped (and counted).
//
// Window(i) is a pure function of (seed, i): the start is drawn uniformly over every valid
// start of every book (SplitMix64 of seed and i), so a training run that records how many
// windows it consumed resumes on exactly the same data.
// Thread-safety: immutable after Load(); const methods may run concurrently.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ctxmem::tokenizer {
class Tokenizer;
}

namespace ctxmem::train {

struct Book {
  std::string name;  // file name without .txt
  std::vector<int32_t> ids;
};

class TextWindows {
 public:
  // Reads and tokenizes DIR/<split>/*.txt (sorted by name). `tokenizer` may be null (bytes as
  // ids, see above). NotFound when the folder is missing; InvalidArgument when it holds no book
  // of at least window_len tokens, window_len < 2, or bytes are asked of a model with
  // n_vocab < 256.
  static absl::StatusOr<TextWindows> Load(const std::string& dir, const std::string& split,
                                          const tokenizer::Tokenizer* tokenizer, int64_t n_vocab,
                                          int64_t window_len);
  // From books in memory (tests).
  static absl::StatusOr<TextWindows> FromBooks(std::vector<Book> books, int64_t window_len);

  // Window `index` of the stream seeded by `seed`: window_len ids.
  std::vector<int32_t> Window(uint64_t seed, int64_t index) const;

  int64_t window_len() const { return window_len_; }
  int64_t n_tokens() const { return n_tokens_; }     // over the books used
  int64_t n_books() const { return books_.size(); }  // books used
  int64_t n_skipped() const { return n_skipped_; }   // books shorter than a window
  const std::vector<Book>& books() const { return books_; }

 private:
  TextWindows() = default;
  std::vector<Book> books_;
  std::vector<int64_t> starts_;  // prefix sums of valid starts per book, starts_[0] = 0
  int64_t window_len_ = 0;
  int64_t n_tokens_ = 0;
  int64_t n_skipped_ = 0;
};

// SplitMix64 (Steele, Lea, Flood 2014): one step of the generator on `state`.
uint64_t SplitMix64(uint64_t& state);

}  // namespace ctxmem::train
