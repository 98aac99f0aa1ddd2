#pragma once
// ScoreContinuation: the log-likelihood of a continuation read after a model past (a memory,
// or several concatenated, via ToKvCache) and an optional prompt. This is what the decoder's
// Score RPC computes: how a compression's quality is checked through the service (the
// continuation's perplexity with the memory as its only context).
// Thread-safety: free functions; concurrent calls on one Transformer are fine (each call works
// on its own copy of the past, which it never writes into).

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/compress/memory.h"
#include "common/model/kv_cache.h"

namespace ctxmem::model {
class Transformer;
}

namespace ctxmem::compress {

struct ScoreOptions {
  // Tokens per forward (bounds the logits held at once: chunk * n_vocab floats). >= 1.
  int64_t chunk_tokens = 512;
  // Highest position + 1 the forward may use; 0 = the model's max_positions (none if 0).
  int64_t max_context = 0;
};

struct ScoreResult {
  int64_t n_scored = 0;               // continuation tokens whose log-probability was summed
  double total_nll = 0;               // nats, -sum(token_logprobs)
  double perplexity = 0;              // exp(total_nll / n_scored)
  std::vector<float> token_logprobs;  // [n_scored], natural log, in continuation order
  int64_t n_prompt_tokens = 0;
};

// Runs `prompt` then `continuation` after `past` (positions from past.next_position) and sums
// log p(token | everything before it) over the continuation. The first continuation token is
// scored only when something predicts it, i.e. when `prompt` is non-empty: the past holds keys
// and values but no logits, so without a prompt n_scored = continuation.size() - 1 (as
// model::EvaluatePerplexity, whose first token only conditions the rest).
// InvalidArgument when there is nothing to score (an empty continuation, or a single token
// without a prompt), for ids outside [0, n_vocab), or when past + prompt + continuation needs
// positions beyond the context limit (the message names the numbers); forward errors pass
// through. `past` is not modified.
absl::StatusOr<ScoreResult> ScoreContinuation(const model::Transformer& model,
                                              const model::KvCache& past,
                                              absl::Span<const int32_t> prompt,
                                              absl::Span<const int32_t> continuation,
                                              const ScoreOptions& options = {});

// The same with a Memory as the past (ToKvCache first).
absl::StatusOr<ScoreResult> ScoreContinuation(const model::Transformer& model, const Memory& memory,
                                              absl::Span<const int32_t> prompt,
                                              absl::Span<const int32_t> continuation,
                                              const ScoreOptions& options = {});

}  // namespace ctxmem::compress
