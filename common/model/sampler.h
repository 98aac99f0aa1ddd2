#pragma once
// Picks the next token id from a row of logits: repetition penalty, temperature, top-k, top-p,
// then a draw from the remaining distribution, in the order HF transformers' generate() applies
// them. temperature = 0 means greedy (argmax after the repetition penalty, as HF's greedy
// search, which applies logits processors but no warpers).
// Thread-safety: not thread-safe (owns an RNG); one Sampler per generation stream.

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <random>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/model/generate_options.h"

namespace ctxmem::model {

// HF RepetitionPenaltyLogitsProcessor on one row: for each distinct id of `history` (however
// often it occurs), a positive score is divided by `penalty` and a negative one multiplied.
// InvalidArgument for an id outside [0, scores.size()); `scores` is then partly updated.
absl::Status ApplyRepetitionPenalty(float penalty, absl::Span<const int32_t> history,
                                    absl::Span<float> scores);

class Sampler {
 public:
  // InvalidArgument when `options` does not validate.
  static absl::StatusOr<Sampler> Create(const SamplingOptions& options);

  // `logits`: [n_vocab] (or [1, n_vocab]), any float dtype, any device; copied to the CPU as
  // fp32. `history`: the ids seen so far (prompt and generated) for the repetition penalty.
  // InvalidArgument for a bad shape, a NaN logit or a history id outside [0, n_vocab).
  absl::StatusOr<int32_t> Sample(const at::Tensor& logits, absl::Span<const int32_t> history);
  // Same on a plain row of logits.
  absl::StatusOr<int32_t> Sample(absl::Span<const float> logits, absl::Span<const int32_t> history);

  const SamplingOptions& options() const { return options_; }

 private:
  explicit Sampler(const SamplingOptions& options);
  // Uniform double in [0, 1) from 53 random bits (same on every standard library, unlike
  // std::uniform_real_distribution).
  double NextUniform();

  SamplingOptions options_;
  std::mt19937_64 rng_;
  std::vector<float> scores_;        // [n_vocab] scratch: processed logits
  std::vector<int32_t> candidates_;  // scratch: ids still allowed, best first
};

}  // namespace ctxmem::model
