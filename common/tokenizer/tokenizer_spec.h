#pragma once
// Everything needed to build a byte-level BPE tokenizer, read from GGUF metadata
// (tokenizer.ggml.*) or from a HF tokenizer.json (+ tokenizer_config.json).

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace ctxmem::weights {
class GgufFile;
}

namespace ctxmem::tokenizer {

// GGUF token types (llama.cpp `llama_token_type`).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct TokenizerSpec {
  // id -> token text in the byte-level alphabet (GPT-2's bytes_to_unicode), e.g. "Ġthe".
  std::vector<std::string> tokens;
  std::vector<TokenType> token_types;  // same length as tokens
  // Merge rules in priority order (rank 0 first): "Ġ" + "t" -> "Ġt".
  std::vector<std::pair<std::string, std::string>> merges;
  // Pre-tokenizer name, as GGUF `tokenizer.ggml.pre` spells it: "smollm", "gpt2", "llama3",
  // "qwen2", "default", ... Unknown names are an error when the Tokenizer is created.
  std::string pre_tokenizer = "gpt2";
  int32_t bos_id = -1;  // -1 = none
  int32_t eos_id = -1;
  int32_t unk_id = -1;
  int32_t pad_id = -1;
  // What BPE emits for a byte that has no token of its own (some vocabularies, SmolLM2's
  // among them, lack a few control bytes): HF `model.unk_token`'s id. -1 = the byte is
  // dropped, as HF does when model.unk_token is null and llama.cpp always does.
  int32_t bpe_unk_id = -1;
  bool add_bos = false;  // prepend BOS when encoding with add_special
  bool add_eos = false;
  // A pre-tokenized piece that is a whole token is taken as is, before any merge (HF BPE
  // `ignore_merges`; Llama 3 sets it).
  bool ignore_merges = false;
  std::string chat_template;  // Jinja source from the model's metadata; empty = none
};

// Reads tokenizer.ggml.{model,pre,tokens,token_type,merges,*_token_id,add_*_token} and
// tokenizer.chat_template. InvalidArgument for a tokenizer model other than "gpt2"
// (byte-level BPE), mismatched array lengths or ids out of range.
absl::StatusOr<TokenizerSpec> TokenizerSpecFromGguf(const weights::GgufFile& file);

// Reads a HF tokenizer.json (model.type "BPE" with byte-level pre-tokenizer/decoder) and, when
// present beside it, tokenizer_config.json (bos/eos, add_bos_token, chat_template).
absl::StatusOr<TokenizerSpec> TokenizerSpecFromJson(const std::string& tokenizer_json_path);
// The same from the texts of the two files (`tokenizer_config_json` empty = no config file);
// InvalidArgument when either is not valid JSON. (For fuzzing and in-memory sources.)
absl::StatusOr<TokenizerSpec> TokenizerSpecFromJsonText(std::string_view tokenizer_json,
                                                        std::string_view tokenizer_config_json);

}  // namespace ctxmem::tokenizer
