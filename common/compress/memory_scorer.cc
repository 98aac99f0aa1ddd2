#include "common/compress/memory_scorer.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/model/torch_call.h"
#include "common/model/transformer.h"
#include "common/status.h"

namespace ctxmem::compress {

absl::StatusOr<ScoreResult> ScoreContinuation(const model::Transformer& model,
                                              const model::KvCache& past,
                                              absl::Span<const int32_t> prompt,
                                              absl::Span<const int32_t> continuation,
                                              const ScoreOptions& options) {
  if (options.chunk_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk_tokens=", options.chunk_tokens, " must be >= 1"));
  }
  // Index (in prompt ++ continuation) of the first scored token: row i of the logits predicts
  // token i + 1, so without a prompt nothing predicts continuation[0].
  const int64_t n_prompt = static_cast<int64_t>(prompt.size());
  const int64_t n_total = n_prompt + static_cast<int64_t>(continuation.size());
  const int64_t first_scored = n_prompt > 0 ? n_prompt : 1;
  if (n_total - first_scored < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "nothing to score: the continuation has ", continuation.size(),
        " tokens; without a prompt its first token only conditions the rest, so it needs at "
        "least 2 tokens"));
  }
  const model::ModelConfig& config = model.config();
  for (int64_t i = 0; i < n_total; ++i) {
    const int32_t id = i < n_prompt ? prompt[i] : continuation[i - n_prompt];
    if (id < 0 || id >= config.n_vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat(i < n_prompt ? "prompt" : "continuation", " token id ", id, " at index ",
                       i < n_prompt ? i : i - n_prompt, " is outside [0, ", config.n_vocab, ")"));
    }
  }
  const int64_t limit = options.max_context > 0 ? options.max_context : config.max_positions;
  if (limit > 0 && past.next_position + n_total > limit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the past ends at position ", past.next_position, " and prompt + continuation add ",
        n_total, " tokens: ", past.next_position + n_total, " > the context limit ", limit));
  }

  c10::InferenceMode inference_mode;
  at::Tensor all_ids;  // [n_total] int64, CPU
  CTXMEM_RETURN_IF_ERROR(model::TorchCall("score: ids", [&] {
    all_ids = at::empty({n_total}, at::kLong);
    int64_t* p = all_ids.data_ptr<int64_t>();
    for (int64_t i = 0; i < n_total; ++i)
      p[i] = i < n_prompt ? prompt[i] : continuation[i - n_prompt];
  }));

  ScoreResult result;
  result.n_prompt_tokens = n_prompt;
  result.token_logprobs.reserve(n_total - first_scored);
  model::KvCache cache = past;  // shares the past's tensors; forwards build new ones
  for (int64_t begin = 0; begin < n_total; begin += options.chunk_tokens) {
    const int64_t len = std::min(options.chunk_tokens, n_total - begin);
    // Rows [row_begin, row_end) of this chunk predict scored tokens (row r -> token r + 1).
    const int64_t row_begin = std::max(begin, first_scored - 1);
    const int64_t row_end = std::min(begin + len, n_total - 1);
    model::ForwardOptions fopts;
    fopts.logits = row_begin < row_end ? model::LogitsMode::kAll : model::LogitsMode::kNone;
    fopts.kv_with_past = true;     // out.k/v = [cache ; chunk]: the next cache, no second copy
    at::Tensor tokens, positions;  // [1, len] int64
    CTXMEM_RETURN_IF_ERROR(model::TorchCall("score: chunk", [&] {
      tokens = all_ids.narrow(0, begin, len).view({1, len}).to(model.device());
      positions = at::arange(cache.next_position, cache.next_position + len,
                             at::TensorOptions().dtype(at::kLong).device(model.device()))
                      .view({1, len});
    }));
    CTXMEM_ASSIGN_OR_RETURN(model::ForwardResult out,
                            model.Forward(tokens, positions, &cache, fopts));
    if (row_begin < row_end) {
      CTXMEM_RETURN_IF_ERROR(model::TorchCall("score: log-probabilities", [&] {
        const int64_t n_rows = row_end - row_begin;
        auto logits = out.logits[0].narrow(0, row_begin - begin, n_rows);  // [n_rows, n_vocab]
        auto logp = at::log_softmax(logits.to(at::kFloat), -1);            // [n_rows, n_vocab]
        auto target = all_ids.narrow(0, row_begin + 1, n_rows).to(logp.device()).unsqueeze(1);
        auto picked = logp.gather(1, target).squeeze(1).to(at::kCPU).contiguous();  // [n_rows]
        const float* p = picked.data_ptr<float>();
        for (int64_t r = 0; r < n_rows; ++r) {
          result.token_logprobs.push_back(p[r]);
          result.total_nll -= static_cast<double>(p[r]);
        }
      }));
    }
    if (begin + len < n_total) {
      CTXMEM_RETURN_IF_ERROR(model::TorchCall(
          "score: append", [&] { cache.Extend(std::move(out.k), std::move(out.v)); }));
    }
  }
  result.n_scored = static_cast<int64_t>(result.token_logprobs.size());
  result.perplexity = std::exp(result.total_nll / result.n_scored);
  return result;
}

absl::StatusOr<ScoreResult> ScoreContinuation(const model::Transformer& model, const Memory& memory,
                                              absl::Span<const int32_t> prompt,
                                              absl::Span<const int32_t> continuation,
                                              const ScoreOptions& options) {
  CTXMEM_ASSIGN_OR_RETURN(model::KvCache past, ToKvCache(memory, model));
  return ScoreContinuation(model, past, prompt, continuation, options);
}

}  // namespace ctxmem::compress
