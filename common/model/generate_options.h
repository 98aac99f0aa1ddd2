#pragma once
// What a generation may be asked to do, without the model: SamplingOptions (how the next token
// is picked, common/model/sampler.h) and GenerateOptions (how long and until what,
// common/model/generator.h), each with Validate(). Torch-free, so request parsing
// (common/service/decoder_request) and its fuzz target need no LibTorch.
// Thread-safety: plain structs; Validate() is const.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace ctxmem::model {

struct SamplingOptions {
  float temperature = 0.0f;         // >= 0; 0 = greedy (top_k, top_p and seed are ignored)
  int32_t top_k = 0;                // >= 0; 0 = off
  float top_p = 1.0f;               // (0, 1]; 1 = off
  float repetition_penalty = 1.0f;  // > 0; 1 = off. HF semantics: for every id already seen,
                                    // positive logits are divided by it, negative multiplied.
  uint64_t seed = 0;                // RNG seed; the same seed gives the same sequence

  // InvalidArgument naming the field and value for anything out of range (or not finite).
  absl::Status Validate() const;
  bool greedy() const { return temperature == 0.0f; }
};

struct GenerateOptions {
  int64_t max_new_tokens = 256;  // >= 1
  SamplingOptions sampling;      // default: greedy
  // Generation stops when the decoded text contains one of these; the stop string and anything
  // after it are not part of the result. Empty strings are not allowed.
  std::vector<std::string> stop_strings;
  bool stop_at_eos = true;        // stop at the tokenizer's eos_id()
  std::vector<int32_t> stop_ids;  // more ids that end generation (ChatML: "<|im_end|>")
  // Highest position + 1 the model may use (past, prompt and generated tokens together);
  // 0 = the model's max_positions (no limit when that is unknown, i.e. 0).
  int64_t max_context = 0;

  // InvalidArgument naming the field and value for anything out of range.
  absl::Status Validate() const;
};

}  // namespace ctxmem::model
