#pragma once
// Perplexity of a model on a token stream, the way tests/reference/make_model_goldens.py computes
// it with transformers: the stream is cut into consecutive non-overlapping windows of `ctx`
// tokens (the last one may be shorter), each window is scored on its own (no context carried
// across windows), and every position after the first of each window contributes the negative
// log-likelihood of its token: ppl = exp(total_nll / n_scored).
// Thread-safety: a free function; concurrent calls on one Model are fine.

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/model/model.h"

namespace ctxmem::model {

struct PerplexityProgress {
  int64_t window = 0;     // windows done so far, 1-based
  int64_t n_windows = 0;  // windows in all
  int64_t n_scored = 0;   // tokens scored so far
  double total_nll = 0;   // nats, summed so far
  double ppl = 0;         // exp(total_nll / n_scored) so far
  double seconds = 0;     // since the start
};

struct PerplexityOptions {
  int64_t ctx = 1024;      // window length in tokens, >= 2 and <= the model's max_positions
  int64_t max_tokens = 0;  // use only the first max_tokens ids; 0 = all
  // Called after each window (may be empty).
  std::function<void(const PerplexityProgress&)> progress;

  // InvalidArgument naming the field and value for anything out of range.
  absl::Status Validate() const;
};

struct PerplexityResult {
  int64_t n_windows = 0;
  int64_t n_scored = 0;          // positions that contributed an NLL
  double total_nll = 0;          // nats
  double ppl = 0;                // exp(total_nll / n_scored)
  double seconds = 0;            // wall time of the forwards and scoring
  double tokens_per_second = 0;  // tokens run through the model / seconds
};

// Scores `ids`. InvalidArgument for bad options, ids outside [0, n_vocab), ctx beyond the
// model's max_positions, or fewer than 2 tokens to score; forward errors are passed through.
absl::StatusOr<PerplexityResult> EvaluatePerplexity(const Model& model,
                                                    absl::Span<const int32_t> ids,
                                                    const PerplexityOptions& options);

}  // namespace ctxmem::model
