#include "common/model/generation_tracker.h"

#include <ATen/core/Tensor.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace ctxmem::model {
namespace {

double SecondsBetween(std::chrono::steady_clock::time_point a,
                      std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

GenerationTracker::GenerationTracker(const Model& model, const GenerateOptions& options,
                                     Sampler sampler, absl::Span<const int32_t> prompt,
                                     int64_t limit)
    : tokenizer_(*model.tokenizer()),
      options_(options),
      limit_(limit),
      start_(Clock::now()),
      sampler_(std::move(sampler)),
      history_(prompt.begin(), prompt.end()),
      decoder_(*model.tokenizer(), /*skip_special=*/true) {
  result_.n_prompt_tokens = static_cast<int64_t>(prompt.size());
}

absl::StatusOr<std::unique_ptr<GenerationTracker>> GenerationTracker::Create(
    const Model& model, absl::Span<const int32_t> prompt, int64_t past_positions,
    const GenerateOptions& options) {
  CTXMEM_RETURN_IF_ERROR(options.Validate());
  if (model.tokenizer() == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("model ", model.path(), " has no tokenizer; cannot generate text"));
  }
  if (prompt.empty()) return absl::InvalidArgumentError("empty prompt: need at least one token");
  const ModelConfig& config = model.config();
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i] < 0 || prompt[i] >= config.n_vocab) {
      return absl::InvalidArgumentError(absl::StrCat("prompt id ", prompt[i], " at index ", i,
                                                     " is outside [0, ", config.n_vocab, ")"));
    }
  }
  const int64_t n_prompt = static_cast<int64_t>(prompt.size());
  const int64_t limit = options.max_context > 0 ? options.max_context : config.max_positions;
  if (limit > 0 && past_positions + n_prompt > limit) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt of ", n_prompt, " tokens", past_positions > 0 ? " after " : "",
                     past_positions > 0 ? absl::StrCat(past_positions, " past positions") : "",
                     " exceeds the context limit of ", limit, " tokens",
                     options.max_context > 0 ? " (max_context)" : " (the model's max_positions)"));
  }
  CTXMEM_ASSIGN_OR_RETURN(Sampler sampler, Sampler::Create(options.sampling));
  return std::unique_ptr<GenerationTracker>(
      new GenerationTracker(model, options, std::move(sampler), prompt, limit));
}

absl::StatusOr<int32_t> GenerationTracker::Sample(absl::Span<const float> logits) {
  return sampler_.Sample(logits, history_);
}

absl::StatusOr<int32_t> GenerationTracker::Sample(const at::Tensor& logits) {
  return sampler_.Sample(logits, history_);
}

bool GenerationTracker::IsStopId(int32_t id) const {
  return (options_.stop_at_eos && id == tokenizer_.eos_id()) ||
         std::find(options_.stop_ids.begin(), options_.stop_ids.end(), id) !=
             options_.stop_ids.end();
}

std::string GenerationTracker::FilterStops(std::string_view piece, bool* stopped) {
  held_.append(piece);
  size_t match = std::string::npos;
  for (const std::string& s : options_.stop_strings) match = std::min(match, held_.find(s));
  if (match != std::string::npos) {
    *stopped = true;
    std::string out = held_.substr(0, match);
    held_.clear();
    return out;
  }
  // Longest suffix of held_ that is a proper prefix of some stop string.
  size_t keep = 0;
  for (const std::string& s : options_.stop_strings) {
    for (size_t k = std::min(s.size() - 1, held_.size()); k > keep; --k) {
      if (held_.compare(held_.size() - k, k, s, 0, k) == 0) {
        keep = k;
        break;
      }
    }
  }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

absl::StatusOr<bool> GenerationTracker::Accept(int32_t id, int64_t next_position,
                                               std::string* delta) {
  if (result_.ids.empty()) {
    first_token_ = Clock::now();
    result_.prefill_seconds = result_.ttft_seconds = SecondsBetween(start_, first_token_);
  }
  result_.ids.push_back(id);
  history_.push_back(id);
  bool stop = false;
  // Held-back text (incomplete UTF-8, a possible stop-string start) once nothing more comes.
  const auto flush_all = [&] {
    std::string out = FilterStops(decoder_.Flush(), &stop);
    if (!stop) out += std::exchange(held_, std::string());
    return out;
  };
  if (IsStopId(id)) {
    *delta = flush_all();
    result_.stop_reason = stop ? StopReason::kStopString : StopReason::kEos;
    stop = true;
  } else {
    CTXMEM_ASSIGN_OR_RETURN(std::string piece, decoder_.Push(id));
    *delta = FilterStops(piece, &stop);
    if (stop) result_.stop_reason = StopReason::kStopString;
  }
  const bool at_max = n_generated() >= options_.max_new_tokens;
  const bool at_limit = limit_ > 0 && next_position >= limit_;
  if (!stop && (at_max || at_limit)) {
    *delta += flush_all();
    result_.stop_reason = stop     ? StopReason::kStopString
                          : at_max ? StopReason::kMaxTokens
                                   : StopReason::kContextLimit;
    stop = true;
  }
  result_.text += *delta;
  return stop;
}

void GenerationTracker::Cancel(bool already_stopped) {
  if (!already_stopped) result_.stop_reason = StopReason::kCancelled;
}

GenerateResult GenerationTracker::TakeResult() {
  if (!result_.ids.empty()) result_.decode_seconds = SecondsBetween(first_token_, Clock::now());
  return std::move(result_);
}

}  // namespace ctxmem::model
