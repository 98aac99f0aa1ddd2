// TokenizerSpecFromGguf (declared in tokenizer_spec.h): reads llama.cpp's tokenizer.ggml.* keys.

#include <string_view>

#include "absl/strings/str_format.h"
#include "common/status.h"
#include "common/tokenizer/tokenizer_spec.h"
#include "common/weights/gguf_file.h"

namespace ctxmem::tokenizer {
namespace {

// Pre-tokenizer names for which llama.cpp sets `ignore_merges`, as Llama 3's tokenizer.json
// does (HF BPE `ignore_merges: true`).
bool PreTokenizerIgnoresMerges(std::string_view pre) {
  return pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "falcon3";
}

// Reads an optional token id into `*id` (unchanged when absent).
absl::Status ReadOptionalId(const weights::GgufFile& file, std::string_view key, size_t n_vocab,
                            int32_t* id) {
  if (file.Find(key) == nullptr) return absl::OkStatus();
  CTXMEM_ASSIGN_OR_RETURN(const int64_t value, file.GetInt(key));
  if (value < 0 || static_cast<uint64_t>(value) >= n_vocab) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: %s=%d is out of range [0, %d)", file.path(), key, value, n_vocab));
  }
  *id = static_cast<int32_t>(value);
  return absl::OkStatus();
}

absl::Status ReadOptionalBool(const weights::GgufFile& file, std::string_view key, bool* value) {
  if (file.Find(key) == nullptr) return absl::OkStatus();
  CTXMEM_ASSIGN_OR_RETURN(*value, file.GetBool(key));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TokenizerSpec> TokenizerSpecFromGguf(const weights::GgufFile& file) {
  if (file.Find("tokenizer.ggml.model") == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s has no tokenizer (no tokenizer.ggml.model)", file.path()));
  }
  CTXMEM_ASSIGN_OR_RETURN(const std::string model, file.GetString("tokenizer.ggml.model"));
  if (model != "gpt2") {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: tokenizer.ggml.model=\"%s\" is not supported (only \"gpt2\", byte-level BPE)",
        file.path(), model));
  }
  TokenizerSpec spec;
  spec.pre_tokenizer = "default";  // llama.cpp's choice when the key is missing
  if (file.Find("tokenizer.ggml.pre") != nullptr) {
    CTXMEM_ASSIGN_OR_RETURN(spec.pre_tokenizer, file.GetString("tokenizer.ggml.pre"));
  }
  spec.ignore_merges = PreTokenizerIgnoresMerges(spec.pre_tokenizer);
  CTXMEM_ASSIGN_OR_RETURN(spec.tokens, file.GetStringArray("tokenizer.ggml.tokens"));
  const size_t n_vocab = spec.tokens.size();
  if (n_vocab == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: tokenizer.ggml.tokens is empty", file.path()));
  }

  spec.token_types.assign(n_vocab, TokenType::kNormal);
  if (file.Find("tokenizer.ggml.token_type") != nullptr) {
    CTXMEM_ASSIGN_OR_RETURN(const std::vector<int64_t> types,
                            file.GetIntArray("tokenizer.ggml.token_type"));
    if (types.size() != n_vocab) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: tokenizer.ggml.token_type has %d entries but tokenizer.ggml.tokens has %d",
          file.path(), types.size(), n_vocab));
    }
    for (size_t id = 0; id < n_vocab; ++id) {
      if (types[id] < 0 || types[id] > static_cast<int64_t>(TokenType::kByte)) {
        return absl::InvalidArgumentError(
            absl::StrFormat("%s: tokenizer.ggml.token_type[%d]=%d is not a token type (0..6)",
                            file.path(), id, types[id]));
      }
      spec.token_types[id] = static_cast<TokenType>(types[id]);
    }
  }

  CTXMEM_ASSIGN_OR_RETURN(const std::vector<std::string> merges,
                          file.GetStringArray("tokenizer.ggml.merges"));
  spec.merges.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string& merge = merges[rank];
    // As llama.cpp: the separator is the first space after the first byte.
    const size_t space = merge.find(' ', 1);
    if (space == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: tokenizer.ggml.merges[%d]=\"%s\" has no space", file.path(), rank, merge));
    }
    spec.merges.emplace_back(merge.substr(0, space), merge.substr(space + 1));
  }

  CTXMEM_RETURN_IF_ERROR(
      ReadOptionalId(file, "tokenizer.ggml.bos_token_id", n_vocab, &spec.bos_id));
  CTXMEM_RETURN_IF_ERROR(
      ReadOptionalId(file, "tokenizer.ggml.eos_token_id", n_vocab, &spec.eos_id));
  CTXMEM_RETURN_IF_ERROR(
      ReadOptionalId(file, "tokenizer.ggml.unknown_token_id", n_vocab, &spec.unk_id));
  CTXMEM_RETURN_IF_ERROR(
      ReadOptionalId(file, "tokenizer.ggml.padding_token_id", n_vocab, &spec.pad_id));
  CTXMEM_RETURN_IF_ERROR(ReadOptionalBool(file, "tokenizer.ggml.add_bos_token", &spec.add_bos));
  CTXMEM_RETURN_IF_ERROR(ReadOptionalBool(file, "tokenizer.ggml.add_eos_token", &spec.add_eos));
  if (file.Find("tokenizer.chat_template") != nullptr) {
    CTXMEM_ASSIGN_OR_RETURN(spec.chat_template, file.GetString("tokenizer.chat_template"));
  }
  return spec;
}

}  // namespace ctxmem::tokenizer
