#pragma once
// The BPE vocabulary and merge table of a byte-level tokenizer, and the merge loop that turns
// one pre-tokenized piece into token ids exactly as HF `tokenizers` does (BPE::merge_word).
// Thread-safety: const methods only; one instance may be shared by any number of threads.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace ctxmem::tokenizer {

class BpeModel {
 public:
  struct Options {
    int32_t unk_id = -1;         // stands for a byte with no token; -1 = such bytes are dropped
    bool ignore_merges = false;  // a piece that is a whole token is taken as is (Llama 3)
  };

  // `tokens` are spelled in the byte-level alphabet, `merges` in rank order (rank 0 first).
  // InvalidArgument for a duplicate token, or a merge whose parts or result are not tokens
  // (naming the merge and its rank). A repeated merge keeps its first (lowest) rank.
  static absl::StatusOr<BpeModel> Create(
      const std::vector<std::string>& tokens,
      const std::vector<std::pair<std::string, std::string>>& merges, const Options& options);

  BpeModel(BpeModel&&) = default;
  BpeModel& operator=(BpeModel&&) = default;

  // Appends the ids of `piece` (raw bytes of one pre-tokenized piece) to `ids`.
  void EncodePiece(std::string_view piece, std::vector<int32_t>* ids) const;

  // id of a token spelled exactly `token_text`, or -1.
  int32_t TokenId(std::string_view token_text) const;

 private:
  struct Merge {
    int32_t rank = 0;
    int32_t new_id = 0;
  };
  BpeModel() = default;

  static uint64_t PairKey(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }

  // Constant after construction.
  Options options_;
  absl::flat_hash_map<std::string, int32_t> token_ids_;  // token text -> id
  absl::flat_hash_map<uint64_t, Merge> merges_;          // PairKey(left, right) -> merge
  std::vector<int32_t> byte_ids_;                        // byte -> id of its token, -1 = none
};

}  // namespace ctxmem::tokenizer
