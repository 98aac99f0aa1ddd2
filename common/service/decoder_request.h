#pragma once
// DecoderRequest: turns the decoder's wire requests (GenerateRequest, ScoreRequest) into
// library inputs, validating everything a client controls against the server's limits: prompt
// or chat present and valid UTF-8, chat roles, sampling ranges, max_tokens, stop strings,
// memory id count. Status codes follow decoder.proto: INVALID_ARGUMENT for malformed input,
// RESOURCE_EXHAUSTED for input over a limit.
// Thread-safety: free functions; the tokenizer is only read.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/model/generate_options.h"
#include "common/tokenizer/tokenizer.h"
#include "ctxmem/v1/decoder.pb.h"

namespace ctxmem::service {

struct DecoderLimits {
  int64_t max_new_tokens = 1024;     // a request asking more: RESOURCE_EXHAUSTED
  int64_t max_prompt_tokens = 8192;  // prompt (or score prompt + continuation) tokens
  int64_t max_memories = 16;         // memory_ids per request
  int64_t max_stop_strings = 16;
  int64_t max_stop_bytes = 256;  // per stop string

  absl::Status Validate() const;  // InvalidArgument naming a non-positive field
};

inline constexpr int64_t kDefaultMaxTokens = 256;  // GenerateRequest.max_tokens = 0

// What a Generate runs: prompt ids and options for model::Generate.
struct GenerateInputs {
  std::vector<std::string> memory_ids;
  std::vector<int32_t> prompt_ids;
  model::GenerateOptions options;
};

// Validates `request` and tokenizes its prompt (raw text as is, special tokens parsed; or the
// chat messages through the model's chat template with the assistant turn opened, "<|im_end|>"
// then ending generation). InvalidArgument for: no prompt/chat, an empty prompt or chat, a
// chat role other than system/user/assistant, invalid UTF-8, bad sampling values, max_tokens
// < 0, an empty stop string, malformed memory ids; ResourceExhausted for max_tokens over the
// limit, too many memories or stop strings, a prompt over max_prompt_tokens;
// FailedPrecondition when chat is asked of a model without a chat template.
absl::StatusOr<GenerateInputs> ParseGenerateRequest(const v1::GenerateRequest& request,
                                                    const tokenizer::Tokenizer& tokenizer,
                                                    const DecoderLimits& limits);

// What a Score runs.
struct ScoreInputs {
  std::vector<std::string> memory_ids;
  std::vector<int32_t> prompt_ids;        // may be empty
  std::vector<int32_t> continuation_ids;  // non-empty
};

// InvalidArgument for a missing/empty continuation, invalid UTF-8, token ids outside the
// vocabulary, malformed memory ids; ResourceExhausted for too many memories or more than
// max_prompt_tokens tokens in prompt + continuation.
absl::StatusOr<ScoreInputs> ParseScoreRequest(const v1::ScoreRequest& request,
                                              const tokenizer::Tokenizer& tokenizer,
                                              const DecoderLimits& limits);

}  // namespace ctxmem::service
