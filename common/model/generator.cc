#include "common/model/generator.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/model/fast_decoder.h"
#include "common/model/generation_tracker.h"
#include "common/model/torch_call.h"
#include "common/status.h"
#include "common/tokenizer/tokenizer.h"

namespace ctxmem::model {
namespace {

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
  KvCache local_cache;
  KvCache* cache = past != nullptr ? past : &local_cache;
  CTXMEM_ASSIGN_OR_RETURN(std::unique_ptr<GenerationTracker> tracker,
                          GenerationTracker::Create(model, prompt, cache->next_position, options));

  // Not InferenceMode: the cache's tensors outlive the call and callers may update them in
  // place (pruning a memory), which inference tensors forbid outside InferenceMode.
  c10::NoGradGuard no_grad;
  CTXMEM_ASSIGN_OR_RETURN(at::Tensor logits, ForwardAndAppend(model.transformer(), prompt, cache));
  CTXMEM_ASSIGN_OR_RETURN(int32_t id, tracker->Sample(logits));

  std::unique_ptr<FastDecoder> fast;  // made at the first decode step
  while (true) {
    std::string delta;
    CTXMEM_ASSIGN_OR_RETURN(const bool stop, tracker->Accept(id, cache->next_position, &delta));
    if (on_token && !on_token(id, delta)) {
      tracker->Cancel(stop);
      break;
    }
    if (stop) break;
    if (model.packed_weights() != nullptr) {
      // Quantized decode steps on a cache preallocated for everything still to come: the
      // cache is copied in once, then written in place (FastDecoder).
      if (fast == nullptr) {
        const int64_t capacity =
            cache->seq_len() + tracker->max_new_tokens() - tracker->n_generated();
        CTXMEM_ASSIGN_OR_RETURN(
            fast, FastDecoder::Create(model.transformer(), *model.packed_weights(), capacity));
        CTXMEM_RETURN_IF_ERROR(fast->Load(*cache));
      }
      CTXMEM_ASSIGN_OR_RETURN(absl::Span<const float> row, fast->Step(id, cache->next_position));
      cache->next_position += 1;
      CTXMEM_ASSIGN_OR_RETURN(id, tracker->Sample(row));
      continue;
    }
    const int32_t next_input[] = {id};
    CTXMEM_ASSIGN_OR_RETURN(logits, ForwardAndAppend(model.transformer(), next_input, cache));
    CTXMEM_ASSIGN_OR_RETURN(id, tracker->Sample(logits));
  }
  if (fast != nullptr) fast->ExportTo(cache);
  return tracker->TakeResult();
}

}  // namespace ctxmem::model
