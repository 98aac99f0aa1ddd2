#include "common/train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace ctxmem::train {

absl::StatusOr<LrSchedule> LrSchedule::Create(double peak, int64_t warmup, int64_t total,
                                              double min_ratio) {
  if (!(peak > 0) || !std::isfinite(peak)) {
    return absl::InvalidArgumentError(absl::StrCat("lr=", peak, " must be a finite number > 0"));
  }
  if (warmup < 0) return absl::InvalidArgumentError(absl::StrCat("warmup=", warmup, " < 0"));
  if (total < 1) return absl::InvalidArgumentError(absl::StrCat("steps=", total, " < 1"));
  if (!(min_ratio >= 0 && min_ratio <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("min lr ratio=", min_ratio, " not in [0, 1]"));
  }
  return LrSchedule(peak, warmup, total, min_ratio);
}

double LrSchedule::At(int64_t step) const {
  const double floor = peak_ * min_ratio_;
  if (step < warmup_) return peak_ * static_cast<double>(step + 1) / static_cast<double>(warmup_);
  if (step >= total_) return floor;
  const double span = static_cast<double>(std::max<int64_t>(1, total_ - warmup_));
  const double s = static_cast<double>(step - warmup_);
  return floor + (peak_ - floor) * 0.5 * (1.0 + std::cos(M_PI * s / span));
}

}  // namespace ctxmem::train
