#include "common/compress/memory_schedule.h"

#include <algorithm>
#include <cmath>

namespace ctxmem::compress {

int64_t IncrementalMemoryTarget(Schedule schedule, int64_t step, int64_t n_steps,
                                int64_t memory_size) {
  n_steps = std::max<int64_t>(n_steps, 1);  // callers guarantee the preconditions; stay safe
  step = std::max<int64_t>(step, 0);
  memory_size = std::max<int64_t>(memory_size, 0);
  if (step >= n_steps - 1) return memory_size;  // the last step always ends at M (§5.1)
  // Same operations and order as the seed's get_incremental_memsize, in doubles like Python's
  // floats, so that truncation lands on the same integers as the worked example of §5.1.
  const double m = static_cast<double>(memory_size);
  const double n = static_cast<double>(n_steps);
  const double t = static_cast<double>(step);
  const double a = static_cast<double>(memory_size / n_steps);
  double target = m;
  switch (schedule) {
    case Schedule::kLinear:
      target = a * (t + 1);
      break;
    case Schedule::kSquare:
      target = a + (m - a) * (t * t) / ((n - 1) * (n - 1));
      break;
    case Schedule::kSqrt:
      target = a + (m - a) * std::sqrt(t) / std::sqrt(n - 1);
      break;
    case Schedule::kInverseConvex:
      target = m / (n - t);
      break;
    case Schedule::kInverseConcave:
      target = m + a - m / (t + 1);
      break;
  }
  return std::clamp<int64_t>(static_cast<int64_t>(target), 0, memory_size);
}

int64_t FixedIncrementalShare(int64_t step, int64_t n_steps, int64_t memory_size) {
  n_steps = std::max<int64_t>(n_steps, 1);  // callers guarantee the preconditions; stay safe
  step = std::max<int64_t>(step, 0);
  memory_size = std::max<int64_t>(memory_size, 0);
  const int64_t base = memory_size / n_steps;
  if (step >= n_steps) return memory_size > 0 ? std::max<int64_t>(base, 1) : 0;
  return base + (step < memory_size % n_steps ? 1 : 0);
}

}  // namespace ctxmem::compress
