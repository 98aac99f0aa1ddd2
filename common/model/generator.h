#pragma once
// Autoregressive text generation: one forward over the prompt (prefill), then one token at a
// time (decode), each new token's keys and values appended to a KvCache. Text is streamed
// through a callback as it becomes final (complete UTF-8, not possibly part of a stop string).
// Thread-safety: Generate is a free function; concurrent calls are fine on one Model as long as
// each has its own KvCache.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/model/generate_options.h"
#include "common/model/kv_cache.h"
#include "common/model/model.h"
#include "common/model/sampler.h"

namespace ctxmem::model {

enum class StopReason {
  kEos,          // the tokenizer's EOS or one of GenerateOptions::stop_ids was generated
  kStopString,   // the decoded text reached one of GenerateOptions::stop_strings
  kMaxTokens,    // max_new_tokens were generated
  kCancelled,    // the token callback returned false
  kContextLimit  // the next token would need a position at or past the context limit
};

// "eos", "stop_string", "max_tokens", "cancelled", "context_limit".
std::string_view StopReasonName(StopReason reason);

// Called once per generated token, in order, with the text that became final with it (may be
// empty: an incomplete UTF-8 character or a possible stop-string start is held back; the last
// call gets whatever was held back). The pieces concatenate to GenerateResult::text. Return
// false to stop (StopReason::kCancelled).
using TokenCallback = std::function<bool(int32_t id, std::string_view text_delta)>;

struct GenerateResult {
  // Generated ids, including the EOS/stop id that ended generation (as HF's `sequences`).
  std::vector<int32_t> ids;
  std::string text;  // decoded text, special tokens skipped, cut before a stop string
  StopReason stop_reason = StopReason::kMaxTokens;
  int64_t n_prompt_tokens = 0;
  double prefill_seconds = 0;  // prompt forward (plus the first sample)
  double decode_seconds = 0;   // everything after the first token
  double ttft_seconds = 0;     // start of Generate to the first token
  // ids.size() - 1 tokens came from decode steps; 0 when fewer than two were generated.
  double decode_tokens_per_second() const {
    return ids.size() > 1 && decode_seconds > 0 ? (ids.size() - 1) / decode_seconds : 0;
  }
  double prefill_tokens_per_second() const {
    return prefill_seconds > 0 ? n_prompt_tokens / prefill_seconds : 0;
  }
};

// Generates from `prompt` (ids, non-empty) after the state in `past`, at positions starting
// from past->next_position (0 without a past), so a compressed memory can serve as the past.
// `past` may be null; otherwise it is borrowed for the call and, on return, also holds the
// prompt and every generated token except the last one (which was never fed back); on error
// its contents are unspecified. `on_token` may be empty.
// Errors: InvalidArgument for bad options or prompt ids, and when the prompt does not fit:
// next_position + prompt length > the context limit (the message names both numbers);
// FailedPrecondition when the model has no tokenizer; forward errors are passed through.
absl::StatusOr<GenerateResult> Generate(const Model& model, absl::Span<const int32_t> prompt,
                                        KvCache* past, const GenerateOptions& options,
                                        const TokenCallback& on_token = nullptr);

}  // namespace ctxmem::model
