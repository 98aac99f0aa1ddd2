#pragma once
// Helpers for the train tests: the tiny random llama checkpoint of tests/data/tiny (2 layers,
// 2 kv heads x 16, vocab 320, no tokenizer) and small synthetic books for it.

#include <cstdint>
#include <memory>
#include <vector>

#include "common/model/model.h"
#include "common/train/text_windows.h"
#include "tests/unit/test_files.h"

namespace ctxmem::train::testing {

inline std::unique_ptr<model::Model> TinyLlama() {
  auto m = model::Model::Load(ctxmem::testing::TestDataPath("tiny/llama"));
  return m.ok() ? *std::move(m) : nullptr;
}

// Books with structure the attention can pick up: a repeating motif with noise, ids < 320.
inline std::vector<Book> SyntheticBooks(int n_books, int64_t len, uint64_t seed) {
  std::vector<Book> books(n_books);
  uint64_t state = seed;
  for (int b = 0; b < n_books; ++b) {
    books[b].name = "book" + std::to_string(b);
    for (int64_t i = 0; i < len; ++i) {
      const uint64_t r = SplitMix64(state);
      books[b].ids.push_back(static_cast<int32_t>(i % 7 == 0 ? 5 + (i / 7) % 11 : r % 300));
    }
  }
  return books;
}

}  // namespace ctxmem::train::testing
