#include "common/train/text_windows.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/tokenizer/tokenizer.h"

namespace ctxmem::train {

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

absl::StatusOr<TextWindows> TextWindows::Load(const std::string& dir, const std::string& split,
                                              const tokenizer::Tokenizer* tokenizer,
                                              int64_t n_vocab, int64_t window_len) {
  namespace fs = std::filesystem;
  const fs::path folder = fs::path(dir) / split;
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) {
    return absl::NotFoundError(absl::StrCat("training text folder ", folder.string(),
                                            " not found (scripts/setup.sh fetches the books; "
                                            "see docs/training.md)"));
  }
  if (tokenizer == nullptr && n_vocab < 256) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the model has no tokenizer and n_vocab=", n_vocab, " < 256: bytes cannot be ids"));
  }
  std::vector<fs::path> files;
  for (const fs::directory_entry& e : fs::directory_iterator(folder, ec)) {
    if (e.is_regular_file() && e.path().extension() == ".txt") files.push_back(e.path());
  }
  if (ec) return absl::InternalError(absl::StrCat("listing ", folder.string(), ": ", ec.message()));
  std::sort(files.begin(), files.end());
  std::vector<Book> books;
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", f.string()));
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    Book b;
    b.name = f.stem().string();
    if (tokenizer != nullptr) {
      absl::StatusOr<std::vector<int32_t>> ids = tokenizer->Encode(text);
      if (!ids.ok()) return WithContext(ids.status(), f.string());
      b.ids = *std::move(ids);
    } else {
      b.ids.reserve(text.size());
      for (unsigned char c : text) b.ids.push_back(c);
    }
    books.push_back(std::move(b));
  }
  return FromBooks(std::move(books), window_len);
}

absl::StatusOr<TextWindows> TextWindows::FromBooks(std::vector<Book> books, int64_t window_len) {
  if (window_len < 2) {
    return absl::InvalidArgumentError(absl::StrCat("window_len=", window_len, " < 2"));
  }
  TextWindows w;
  w.window_len_ = window_len;
  w.starts_.push_back(0);
  for (Book& b : books) {
    const int64_t n = static_cast<int64_t>(b.ids.size());
    if (n < window_len) {
      ++w.n_skipped_;
      continue;
    }
    w.n_tokens_ += n;
    w.starts_.push_back(w.starts_.back() + (n - window_len + 1));
    w.books_.push_back(std::move(b));
  }
  if (w.books_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no book of at least ", window_len, " tokens (",
                                                   w.n_skipped_, " shorter ones)"));
  }
  return w;
}

std::vector<int32_t> TextWindows::Window(uint64_t seed, int64_t index) const {
  uint64_t state = seed;
  state = SplitMix64(state) ^ static_cast<uint64_t>(index);
  const uint64_t total = static_cast<uint64_t>(starts_.back());
  // Rejection sampling keeps the draw uniform over [0, total).
  const uint64_t limit = UINT64_MAX - UINT64_MAX % total;
  uint64_t r = SplitMix64(state);
  while (r >= limit) r = SplitMix64(state);
  const int64_t flat = static_cast<int64_t>(r % total);
  // Book b holds flat starts [starts_[b], starts_[b + 1]).
  const size_t b = std::upper_bound(starts_.begin(), starts_.end(), flat) - starts_.begin() - 1;
  const int64_t start = flat - starts_[b];
  const std::vector<int32_t>& ids = books_[b].ids;
  return std::vector<int32_t>(ids.begin() + start, ids.begin() + start + window_len_);
}

}  // namespace ctxmem::train
