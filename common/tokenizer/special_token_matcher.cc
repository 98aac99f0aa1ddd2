#include "common/tokenizer/special_token_matcher.h"

#include <algorithm>

#include "common/tokenizer/utf8.h"

namespace ctxmem::tokenizer {

void SpecialTokenMatcher::Add(std::string_view text, int32_t id, bool is_control) {
  if (text.empty() || FindInvalidUtf8(text) >= 0) return;
  std::vector<Entry>& bucket = entries_by_first_byte_[static_cast<uint8_t>(text[0])];
  Entry entry{std::string(text), id, is_control};
  // Keep the bucket sorted longest first; equal lengths keep insertion order (lower id first).
  auto it = std::upper_bound(
      bucket.begin(), bucket.end(), entry,
      [](const Entry& a, const Entry& b) { return a.text.size() > b.text.size(); });
  bucket.insert(it, std::move(entry));
  ++n_tokens_;
}

void SpecialTokenMatcher::Split(std::string_view text, bool match_control,
                                std::vector<Segment>* segments) const {
  segments->clear();
  size_t plain_begin = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const std::vector<Entry>& bucket = entries_by_first_byte_[static_cast<uint8_t>(text[pos])];
    const Entry* found = nullptr;
    for (const Entry& entry : bucket) {
      if (entry.is_control && !match_control) continue;
      if (text.substr(pos, entry.text.size()) == entry.text) {
        found = &entry;
        break;
      }
    }
    if (found == nullptr) {
      ++pos;
      continue;
    }
    if (pos > plain_begin) segments->push_back({plain_begin, pos, -1});
    segments->push_back({pos, pos + found->text.size(), found->id});
    pos += found->text.size();
    plain_begin = pos;
  }
  if (plain_begin < text.size()) segments->push_back({plain_begin, text.size(), -1});
}

}  // namespace ctxmem::tokenizer
