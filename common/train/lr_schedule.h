#pragma once
// LrSchedule: linear warmup then cosine decay to a floor, the usual schedule for fine-tuning
// small modules. lr(step) for 0-based optimizer steps:
//   step < warmup:           peak * (step + 1) / warmup
//   warmup <= step < total:  floor + (peak - floor) * (1 + cos(pi * s / max(1, total - warmup))) /
//   2
//                            with s = step - warmup, floor = peak * min_ratio
//   step >= total:           floor
// Thread-safety: immutable value type.

#include <cstdint>

#include "absl/status/statusor.h"

namespace ctxmem::train {

class LrSchedule {
 public:
  // InvalidArgument for peak <= 0 (or not finite), warmup < 0, total < 1, min_ratio outside
  // [0, 1].
  static absl::StatusOr<LrSchedule> Create(double peak, int64_t warmup, int64_t total,
                                           double min_ratio = 0.1);

  double At(int64_t step) const;
  double peak() const { return peak_; }

 private:
  LrSchedule(double peak, int64_t warmup, int64_t total, double min_ratio)
      : peak_(peak), warmup_(warmup), total_(total), min_ratio_(min_ratio) {}
  double peak_;
  int64_t warmup_;
  int64_t total_;
  double min_ratio_;
};

}  // namespace ctxmem::train
