#include "common/compress/chunk_planner.h"

#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/compress/memory_schedule.h"

namespace ctxmem::compress {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Fixed chunks [C, ..., C, L mod C] (§1 step 1).
std::vector<int64_t> FixedChunkSizes(int64_t length, int64_t chunk_size) {
  std::vector<int64_t> sizes;
  for (int64_t done = 0; done < length; done += chunk_size) {
    sizes.push_back(std::min(chunk_size, length - done));
  }
  return sizes;
}

}  // namespace

std::string_view PlanBasisName(PlanBasis basis) {
  switch (basis) {
    case PlanBasis::kTotalLength:
      return "total_length";
    case PlanBasis::kExpectedLength:
      return "expected_length";
    case PlanBasis::kUnknownLength:
      return "unknown_length";
  }
  return "?";
}

std::vector<int64_t> DecrementalChunkSizes(int64_t length, int64_t chunk_size, int64_t memory_size,
                                           Schedule schedule) {
  const int64_t n = CeilDiv(length, chunk_size);
  if (n <= 1) return {length};  // §12.8: n = 1 is one chunk (the seed returned a bare int)
  const int64_t c_bar = length / n;
  int64_t sum_m = 0;  // sum of m_i for i < n - 1
  for (int64_t i = 0; i + 1 < n; ++i) sum_m += IncrementalMemoryTarget(schedule, i, n, memory_size);
  const int64_t m_bar = sum_m / (n - 1);
  std::vector<int64_t> sizes(n);
  sizes[0] = c_bar;
  for (int64_t i = 1; i < n; ++i) {
    sizes[i] = c_bar + m_bar - IncrementalMemoryTarget(schedule, i - 1, n, memory_size);
  }
  const int64_t head = std::accumulate(sizes.begin(), sizes.end() - 1, int64_t{0});
  sizes[n - 1] = length - head;
  return sizes;
}

absl::StatusOr<ChunkPlan> ChunkPlan::Create(const CompressionConfig& config, int64_t total_length) {
  ChunkPlan plan;
  const int64_t c = config.chunk_size;
  if (c < 1) return absl::InvalidArgumentError(absl::StrCat("chunk_size=", c, " must be >= 1"));
  plan.decremental_requested_ = config.decremental_chunk;
  plan.steady_size_ = c;
  int64_t length = -1;
  if (total_length >= 0) {
    plan.basis_ = PlanBasis::kTotalLength;
    length = total_length;
  } else if (config.expected_length > 0) {
    plan.basis_ = PlanBasis::kExpectedLength;
    length = config.expected_length;
  } else {
    plan.basis_ = PlanBasis::kUnknownLength;
    return plan;  // fixed chunks of C, n = 1
  }
  plan.planned_length_ = length;
  plan.n_steps_ = std::max<int64_t>(1, CeilDiv(length, c));
  if (!config.decremental_chunk || length == 0) {
    plan.planned_sizes_ = FixedChunkSizes(length, c);
    return plan;
  }
  plan.decremental_ = true;
  plan.planned_sizes_ = DecrementalChunkSizes(length, c, config.memory_size, config.schedule);
  for (size_t i = 0; i < plan.planned_sizes_.size(); ++i) {
    if (plan.planned_sizes_[i] > 0) continue;
    return absl::InvalidArgumentError(absl::StrCat(
        "decremental chunk ", i, " of ", plan.planned_sizes_.size(), " would have size ",
        plan.planned_sizes_[i], " <= 0 (", std::string(PlanBasisName(plan.basis_)), "=", length,
        ", chunk_size=", c, ", memory_size=", config.memory_size,
        ", schedule=", std::string(ScheduleName(config.schedule)), ", sizes=[",
        absl::StrJoin(plan.planned_sizes_, ","),
        "]): lower memory_size or raise chunk_size (spec §12.8)"));
  }
  const int64_t n = plan.n_steps_;
  if (n > 1) {
    // Past the plan the memory is full (M); keep memory + chunk at c̄ + m̄ as §5.3 intends.
    int64_t sum_m = 0;
    for (int64_t i = 0; i + 1 < n; ++i) {
      sum_m += IncrementalMemoryTarget(config.schedule, i, n, config.memory_size);
    }
    const int64_t steady = length / n + sum_m / (n - 1) - config.memory_size;
    if (steady >= 1) plan.steady_size_ = steady;
  }
  return plan;
}

int64_t ChunkPlan::chunk_size(int64_t step) const {
  if (step >= 0 && step < static_cast<int64_t>(planned_sizes_.size())) {
    return planned_sizes_[step];
  }
  return steady_size_;
}

std::string ChunkPlan::Describe() const {
  if (basis_ == PlanBasis::kUnknownLength) {
    return absl::StrCat("fixed chunks of ", steady_size_,
                        decremental_requested_ ? " (decremental chunks need a length: " : " (",
                        "stream of unknown length and no expected_length; IM targets are the "
                        "full memory_size from the first step)");
  }
  return absl::StrCat(decremental_ ? "decremental" : "fixed", " chunks from ",
                      std::string(PlanBasisName(basis_)), "=", planned_length_, ": n=", n_steps_,
                      " sizes=[", absl::StrJoin(planned_sizes_, ","), "]",
                      basis_ == PlanBasis::kExpectedLength
                          ? absl::StrCat(", then ", steady_size_, " per step past it")
                          : std::string());
}

}  // namespace ctxmem::compress
