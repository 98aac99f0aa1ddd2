#include "common/tokenizer/bpe_model.h"

#include <queue>

#include "absl/strings/str_format.h"
#include "common/tokenizer/byte_unicode.h"

// Merge loop invariants (the same as HF tokenizers' `Word::merge_all`):
//  - symbols form a doubly linked list over the piece's bytes; a merged-away symbol has
//    length 0 and is never revisited;
//  - the queue holds candidate merges (rank, left position, resulting id); it is a min-heap on
//    (rank, position), so the lowest rank wins and ties go to the leftmost pair;
//  - an entry is stale when its left symbol is gone, has no right neighbour, or the pair now at
//    that position merges into a different id; stale entries are skipped when popped.

namespace ctxmem::tokenizer {
namespace {

struct Symbol {
  int32_t id = 0;
  int32_t prev = -1;
  int32_t next = -1;
  int32_t length = 0;  // bytes; 0 = merged into its left neighbour
};

struct Candidate {
  int32_t rank = 0;
  int32_t pos = 0;  // index of the left symbol
  int32_t new_id = 0;
  bool operator>(const Candidate& other) const {
    return rank != other.rank ? rank > other.rank : pos > other.pos;
  }
};

}  // namespace

absl::StatusOr<BpeModel> BpeModel::Create(
    const std::vector<std::string>& tokens,
    const std::vector<std::pair<std::string, std::string>>& merges, const Options& options) {
  BpeModel model;
  model.options_ = options;
  model.token_ids_.reserve(tokens.size());
  for (size_t id = 0; id < tokens.size(); ++id) {
    auto [it, inserted] = model.token_ids_.emplace(tokens[id], static_cast<int32_t>(id));
    if (!inserted) {
      return absl::InvalidArgumentError(
          absl::StrFormat("duplicate token \"%s\": ids %d and %d", tokens[id], it->second, id));
    }
  }
  model.byte_ids_.assign(256, -1);
  for (int b = 0; b < 256; ++b) {
    model.byte_ids_[b] = model.TokenId(ByteToUnicode(static_cast<uint8_t>(b)));
  }
  model.merges_.reserve(merges.size());
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    joined.assign(left).append(right);
    const int32_t left_id = model.TokenId(left);
    const int32_t right_id = model.TokenId(right);
    const int32_t new_id = model.TokenId(joined);
    if (left_id < 0 || right_id < 0 || new_id < 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "merge %d (\"%s\" \"%s\") names a token not in the vocabulary", rank, left, right));
    }
    model.merges_.emplace(PairKey(left_id, right_id), Merge{static_cast<int32_t>(rank), new_id});
  }
  return model;
}

int32_t BpeModel::TokenId(std::string_view token_text) const {
  // absl::string_view is its own type in this Abseil build (not std::string_view).
  auto it = token_ids_.find(absl::string_view(token_text.data(), token_text.size()));
  return it == token_ids_.end() ? -1 : it->second;
}

void BpeModel::EncodePiece(std::string_view piece, std::vector<int32_t>* ids) const {
  if (piece.empty()) return;
  if (options_.ignore_merges) {
    std::string spelled;
    AppendByteLevel(piece, &spelled);
    const int32_t id = TokenId(spelled);
    if (id >= 0) {
      ids->push_back(id);
      return;
    }
  }
  std::vector<Symbol> symbols;
  symbols.reserve(piece.size());
  for (char c : piece) {
    int32_t id = byte_ids_[static_cast<uint8_t>(c)];
    if (id < 0) id = options_.unk_id;
    if (id < 0) continue;  // HF drops a character with no token when there is no unk token
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1, 1});
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;
  if (symbols.size() == 1) {
    ids->push_back(symbols[0].id);
    return;
  }

  std::vector<Candidate> heap_storage;
  heap_storage.reserve(symbols.size() * 2);
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue(
      std::greater<>(), std::move(heap_storage));
  auto push_pair = [&](int32_t pos) {
    const Symbol& left = symbols[pos];
    if (left.next < 0) return;
    auto it = merges_.find(PairKey(left.id, symbols[left.next].id));
    if (it != merges_.end()) queue.push({it->second.rank, pos, it->second.new_id});
  };
  for (int32_t pos = 0; pos + 1 < static_cast<int32_t>(symbols.size()); ++pos) push_pair(pos);

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (left.length == 0 || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    auto it = merges_.find(PairKey(left.id, right.id));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;
    left.id = top.new_id;
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }
  for (int32_t pos = 0; pos >= 0; pos = symbols[pos].next) ids->push_back(symbols[pos].id);
}

}  // namespace ctxmem::tokenizer
