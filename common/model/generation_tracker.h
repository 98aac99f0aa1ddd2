#pragma once
// GenerationTracker: what one generation request keeps between model steps, whoever runs the
// steps (Generate for one stream, a batch scheduler for many): its sampler and the history
// the repetition penalty reads, the streaming UTF-8 decoder, the stop-string filter, the stop
// conditions (EOS and stop ids, stop strings, max_new_tokens, the context limit) and the
// GenerateResult being built. The model is not touched here: a caller feeds it logits.
// Thread-safety: not thread-safe (one stream); the model is borrowed and must outlive it.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/model/generator.h"
#include "common/model/model.h"
#include "common/model/sampler.h"
#include "common/tokenizer/tokenizer.h"

namespace ctxmem::model {

class GenerationTracker {
 public:
  // Validates `options` and `prompt` (ids in the vocabulary, non-empty) and that the prompt
  // fits the context limit after `past_positions` positions already taken by a past; errors as
  // Generate documents (InvalidArgument, FailedPrecondition without a tokenizer). The clock for
  // the result's timings starts here.
  static absl::StatusOr<std::unique_ptr<GenerationTracker>> Create(const Model& model,
                                                                   absl::Span<const int32_t> prompt,
                                                                   int64_t past_positions,
                                                                   const GenerateOptions& options);
  GenerationTracker(const GenerationTracker&) = delete;
  GenerationTracker& operator=(const GenerationTracker&) = delete;

  // The next id from `logits` [n_vocab] (sampling options and repetition-penalty history of
  // this request). Errors from Sampler::Sample.
  absl::StatusOr<int32_t> Sample(absl::Span<const float> logits);
  absl::StatusOr<int32_t> Sample(const at::Tensor& logits);

  // Records the generated `id`; `next_position` is the position the id would take when fed
  // back (past + prompt + ids fed so far). Sets *delta to the text that became final and
  // returns true when generation is over (stop id, stop string, max_new_tokens, context
  // limit; stop_reason is set). InvalidArgument for an id the tokenizer rejects.
  absl::StatusOr<bool> Accept(int32_t id, int64_t next_position, std::string* delta);

  // The caller stopped the stream early (its token callback said so): kCancelled, unless the
  // token it had just accepted already ended generation.
  void Cancel(bool already_stopped);

  // Stamps decode_seconds and hands out the result; the tracker is spent afterwards.
  GenerateResult TakeResult();

  int64_t n_generated() const { return static_cast<int64_t>(result_.ids.size()); }
  int64_t max_new_tokens() const { return options_.max_new_tokens; }

 private:
  using Clock = std::chrono::steady_clock;
  GenerationTracker(const Model& model, const GenerateOptions& options, Sampler sampler,
                    absl::Span<const int32_t> prompt, int64_t limit);
  bool IsStopId(int32_t id) const;
  // The part of the held-back text that became final with `piece`; sets *stopped when a stop
  // string completed (the text before it is returned, the rest dropped).
  std::string FilterStops(std::string_view piece, bool* stopped);

  // Constant after construction.
  const tokenizer::Tokenizer& tokenizer_;
  const GenerateOptions options_;
  const int64_t limit_;  // highest position + 1; 0 = none
  const Clock::time_point start_;

  Sampler sampler_;
  std::vector<int32_t> history_;  // prompt + generated, for the repetition penalty
  tokenizer::StreamingDecoder decoder_;
  // Tail of the decoded text that could still become a stop string. Invariant: it never
  // contains a whole stop string, and nothing emitted before it does either, so a match can
  // only start inside it.
  std::string held_;
  Clock::time_point first_token_;
  GenerateResult result_;
};

}  // namespace ctxmem::model
