#include "common/model/generator.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/model/fast_decoder.h"
#include "common/model/torch_call.h"
#include "common/status.h"
#include "common/tokenizer/tokenizer.h"

namespace ctxmem::model {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Holds back the tail of the decoded text that could still become a stop string, so nothing
// of a stop string is ever emitted. Invariant: `held_` never contains a whole stop string, and
// everything emitted before it contains none either, so a match can only start inside `held_`.
class StopStringFilter {
 public:
  explicit StopStringFilter(const std::vector<std::string>& stops) : stops_(stops) {}

  // Adds `piece` and returns the text that became final. When a stop string is now complete,
  // sets *stopped and returns only the text before it.
  std::string Push(std::string_view piece, bool* stopped) {
    held_.append(piece);
    size_t match = std::string::npos;
    for (const std::string& s : stops_) match = std::min(match, held_.find(s));
    if (match != std::string::npos) {
      *stopped = true;
      std::string out = held_.substr(0, match);
      held_.clear();
      return out;
    }
    // Longest suffix of held_ that is a proper prefix of some stop string.
    size_t keep = 0;
    for (const std::string& s : stops_) {
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

  // The text still held back (no stop string can complete any more).
  std::string Finish() { return std::exchange(held_, std::string()); }

 private:
  const std::vector<std::string>& stops_;
  std::string held_;
};

// One forward of `ids` at positions [cache->next_position, +n) after `cache`, appending the
// new keys/values to it. Returns the last position's logits [n_vocab] fp32.
absl::StatusOr<at::Tensor> ForwardAndAppend(const Transformer& transformer,
                                            absl::Span<const int32_t> ids, KvCache* cache) {
  const int64_t n = static_cast<int64_t>(ids.size());
  at::Tensor tokens, positions;  // [1, n] int64
  CTXMEM_RETURN_IF_ERROR(TorchCall("generate: inputs", [&] {
    tokens = at::empty({1, n}, at::kLong);
    int64_t* p = tokens.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = ids[i];
    positions = at::arange(cache->next_position, cache->next_position + n, at::kLong).view({1, n});
  }));
  ForwardOptions fopts;
  fopts.logits = LogitsMode::kLast;
  fopts.kv_with_past = true;  // the forward's [cache ; new] becomes the cache (no second copy)
  CTXMEM_ASSIGN_OR_RETURN(
      ForwardResult out,
      transformer.Forward(tokens, positions, cache->empty() ? nullptr : cache, fopts));
  at::Tensor row;
  CTXMEM_RETURN_IF_ERROR(TorchCall("generate: append", [&] {
    cache->Extend(std::move(out.k), std::move(out.v));
    row = out.logits.view({-1});  // [n_vocab]
  }));
  return row;
}

}  // namespace

std::string_view StopReasonName(StopReason reason) {
  switch (reason) {
    case StopReason::kEos:
      return "eos";
    case StopReason::kStopString:
      return "stop_string";
    case StopReason::kMaxTokens:
      return "max_tokens";
    case StopReason::kCancelled:
      return "cancelled";
    case StopReason::kContextLimit:
      return "context_limit";
  }
  return "unknown";
}

absl::StatusOr<GenerateResult> Generate(const Model& model, absl::Span<const int32_t> prompt,
                                        KvCache* past, const GenerateOptions& options,
                                        const TokenCallback& on_token) {
  const Clock::time_point t_start = Clock::now();
  CTXMEM_RETURN_IF_ERROR(options.Validate());
  const tokenizer::Tokenizer* tok = model.tokenizer();
  if (tok == nullptr) {
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
  KvCache local_cache;
  KvCache* cache = past != nullptr ? past : &local_cache;
  const int64_t n_prompt = static_cast<int64_t>(prompt.size());
  const int64_t limit = options.max_context > 0 ? options.max_context : config.max_positions;
  if (limit > 0 && cache->next_position + n_prompt > limit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt of ", n_prompt, " tokens", cache->next_position > 0 ? " after " : "",
        cache->next_position > 0 ? absl::StrCat(cache->next_position, " past positions") : "",
        " exceeds the context limit of ", limit, " tokens",
        options.max_context > 0 ? " (max_context)" : " (the model's max_positions)"));
  }
  CTXMEM_ASSIGN_OR_RETURN(Sampler sampler, Sampler::Create(options.sampling));

  // Not InferenceMode: the cache's tensors outlive the call and callers may update them in
  // place (pruning a memory), which inference tensors forbid outside InferenceMode.
  c10::NoGradGuard no_grad;
  GenerateResult result;
  result.n_prompt_tokens = n_prompt;
  std::vector<int32_t> history(prompt.begin(), prompt.end());  // for the repetition penalty
  tokenizer::StreamingDecoder decoder(*tok, /*skip_special=*/true);
  StopStringFilter filter(options.stop_strings);
  const auto is_stop_id = [&](int32_t id) {
    return (options.stop_at_eos && id == tok->eos_id()) ||
           std::find(options.stop_ids.begin(), options.stop_ids.end(), id) !=
               options.stop_ids.end();
  };

  CTXMEM_ASSIGN_OR_RETURN(at::Tensor logits, ForwardAndAppend(model.transformer(), prompt, cache));
  CTXMEM_ASSIGN_OR_RETURN(int32_t id, sampler.Sample(logits, history));
  result.prefill_seconds = result.ttft_seconds = SecondsSince(t_start);
  const Clock::time_point t_first = Clock::now();

  std::unique_ptr<FastDecoder> fast;  // made at the first decode step
  while (true) {
    result.ids.push_back(id);
    history.push_back(id);
    std::string delta;
    bool stop = false;
    if (is_stop_id(id)) {
      delta = filter.Push(decoder.Flush(), &stop);
      if (!stop) delta += filter.Finish();
      result.stop_reason = stop ? StopReason::kStopString : StopReason::kEos;
      stop = true;
    } else {
      CTXMEM_ASSIGN_OR_RETURN(std::string piece, decoder.Push(id));
      delta = filter.Push(piece, &stop);
      if (stop) result.stop_reason = StopReason::kStopString;
    }
    const bool at_max = static_cast<int64_t>(result.ids.size()) >= options.max_new_tokens;
    const bool at_limit = limit > 0 && cache->next_position >= limit;
    if (!stop && (at_max || at_limit)) {
      delta += filter.Push(decoder.Flush(), &stop);
      if (!stop) delta += filter.Finish();
      result.stop_reason = stop     ? StopReason::kStopString
                           : at_max ? StopReason::kMaxTokens
                                    : StopReason::kContextLimit;
      stop = true;
    }
    result.text += delta;
    if (on_token && !on_token(id, delta)) {
      if (!stop) result.stop_reason = StopReason::kCancelled;
      break;
    }
    if (stop) break;
    if (model.packed_weights() != nullptr) {
      // Quantized decode steps on a cache preallocated for everything still to come: the
      // cache is copied in once, then written in place (FastDecoder).
      if (fast == nullptr) {
        const int64_t capacity =
            cache->seq_len() + options.max_new_tokens - static_cast<int64_t>(result.ids.size());
        CTXMEM_ASSIGN_OR_RETURN(
            fast, FastDecoder::Create(model.transformer(), *model.packed_weights(), capacity));
        CTXMEM_RETURN_IF_ERROR(fast->Load(*cache));
      }
      CTXMEM_ASSIGN_OR_RETURN(absl::Span<const float> row, fast->Step(id, cache->next_position));
      cache->next_position += 1;
      CTXMEM_ASSIGN_OR_RETURN(id, sampler.Sample(row, history));
      continue;
    }
    const int32_t next_input[] = {id};
    CTXMEM_ASSIGN_OR_RETURN(logits, ForwardAndAppend(model.transformer(), next_input, cache));
    CTXMEM_ASSIGN_OR_RETURN(id, sampler.Sample(logits, history));
  }
  if (fast != nullptr) fast->ExportTo(cache);
  result.decode_seconds = SecondsSince(t_first);
  return result;
}

}  // namespace ctxmem::model
