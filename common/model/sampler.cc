#include "common/model/sampler.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/model/torch_call.h"
#include "common/status.h"

namespace ctxmem::model {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

}  // namespace

absl::Status ApplyRepetitionPenalty(float penalty, absl::Span<const int32_t> history,
                                    absl::Span<float> scores) {
  const int64_t n_vocab = static_cast<int64_t>(scores.size());
  std::vector<uint8_t> seen(scores.size(), 0);
  for (int32_t id : history) {
    if (id < 0 || id >= n_vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("history id ", id, " is outside [0, ", n_vocab, ")"));
    }
    if (seen[id]) continue;
    seen[id] = 1;
    float& s = scores[id];
    s = s < 0 ? s * penalty : s / penalty;
  }
  return absl::OkStatus();
}

Sampler::Sampler(const SamplingOptions& options) : options_(options), rng_(options.seed) {}

absl::StatusOr<Sampler> Sampler::Create(const SamplingOptions& options) {
  CTXMEM_RETURN_IF_ERROR(options.Validate());
  return Sampler(options);
}

double Sampler::NextUniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

absl::StatusOr<int32_t> Sampler::Sample(const at::Tensor& logits,
                                        absl::Span<const int32_t> history) {
  if (!logits.defined() || logits.numel() == 0 ||
      !(logits.dim() == 1 || (logits.dim() == 2 && logits.size(0) == 1))) {
    return absl::InvalidArgumentError(absl::StrCat("logits must be [n_vocab] or [1, n_vocab], got ",
                                                   logits.defined() ? logits.dim() : 0, " dims"));
  }
  at::Tensor row;  // [n_vocab] fp32, CPU, contiguous
  CTXMEM_RETURN_IF_ERROR(TorchCall("sampler: copying logits", [&] {
    row = logits.reshape({-1}).to(at::kCPU, at::kFloat).contiguous();
  }));
  return Sample(absl::MakeConstSpan(row.data_ptr<float>(), row.numel()), history);
}

absl::StatusOr<int32_t> Sampler::Sample(absl::Span<const float> logits,
                                        absl::Span<const int32_t> history) {
  const int64_t n_vocab = static_cast<int64_t>(logits.size());
  if (n_vocab == 0) return absl::InvalidArgumentError("empty logits row");
  if (options_.greedy() && options_.repetition_penalty == 1.0f) {
    // One pass, no copy: the first maximum (as torch.argmax) and whether any logit is NaN or
    // +inf (then the checks below name the first one). A batched decode step samples every
    // stream's row on the step's thread, so this pass is on the step's critical path.
    int64_t best = 0;
    bool bad = false;
    for (int64_t i = 0; i < n_vocab; ++i) {
      const float v = logits[i];
      bad |= std::isnan(v) || v == std::numeric_limits<float>::infinity();
      if (v > logits[best]) best = i;
    }
    if (!bad) return static_cast<int32_t>(best);
  }
  scores_.assign(logits.begin(), logits.end());
  for (int64_t i = 0; i < n_vocab; ++i) {
    if (std::isnan(scores_[i]) || scores_[i] == std::numeric_limits<float>::infinity()) {
      return absl::InvalidArgumentError(
          absl::StrCat("logit of id ", i, " is ", scores_[i], " (model produced NaN/inf)"));
    }
  }
  if (options_.repetition_penalty != 1.0f) {
    CTXMEM_RETURN_IF_ERROR(
        ApplyRepetitionPenalty(options_.repetition_penalty, history, absl::MakeSpan(scores_)));
  }
  // Greedy: the first maximum, as torch.argmax.
  const auto best = std::max_element(scores_.begin(), scores_.end());
  if (options_.greedy() || *best == kNegInf) return static_cast<int32_t>(best - scores_.begin());

  for (float& s : scores_) s /= options_.temperature;

  // Top-k: HF removes scores below the k-th largest, so ties with it survive.
  float threshold = kNegInf;
  if (options_.top_k > 0 && options_.top_k < n_vocab) {
    std::vector<float> tmp(scores_);
    std::nth_element(tmp.begin(), tmp.begin() + (options_.top_k - 1), tmp.end(),
                     std::greater<float>());
    threshold = tmp[options_.top_k - 1];
  }
  candidates_.clear();
  for (int64_t i = 0; i < n_vocab; ++i) {
    if (scores_[i] > kNegInf && scores_[i] >= threshold) {
      candidates_.push_back(static_cast<int32_t>(i));
    }
  }
  const float max_score = *best;  // already divided by the temperature
  double z = 0;                   // softmax normaliser over the candidates
  for (int32_t id : candidates_) z += std::exp(static_cast<double>(scores_[id] - max_score));

  // Top-p: HF sorts ascending and drops ids whose cumulative probability is <= 1 - top_p;
  // equivalently, walking best first, an id is kept while the mass before it is < top_p.
  // Sort only as far as needed: grow the sorted prefix until it holds that mass.
  if (options_.top_p < 1.0f) {
    const auto better = [&](int32_t a, int32_t b) {
      return scores_[a] != scores_[b] ? scores_[a] > scores_[b] : a < b;
    };
    const size_t n_cand = candidates_.size();
    size_t n_sorted = std::min<size_t>(64, n_cand);
    size_t n_keep = 0;
    while (true) {
      std::partial_sort(candidates_.begin(), candidates_.begin() + n_sorted, candidates_.end(),
                        better);
      double mass = 0;
      n_keep = 0;
      while (n_keep < n_sorted && mass < options_.top_p * z) {
        mass += std::exp(static_cast<double>(scores_[candidates_[n_keep]] - max_score));
        ++n_keep;
      }
      if (n_keep < n_sorted || n_sorted == n_cand || mass >= options_.top_p * z) break;
      n_sorted = std::min(n_cand, n_sorted * 4);
    }
    candidates_.resize(std::max<size_t>(n_keep, 1));
    z = 0;
    for (int32_t id : candidates_) z += std::exp(static_cast<double>(scores_[id] - max_score));
  }

  // Inverse-CDF draw over the kept candidates.
  const double target = NextUniform() * z;
  double acc = 0;
  for (int32_t id : candidates_) {
    acc += std::exp(static_cast<double>(scores_[id] - max_score));
    if (target < acc) return id;
  }
  return candidates_.back();  // rounding: target landed on the total
}

}  // namespace ctxmem::model
