#pragma once
// Memory targets per step: the IM schedules of spec §5.1 and the fixed-incremental shares of
// §4.3 / §12.7. Pure integer arithmetic, no tensors.
// Thread-safety: free functions without state.

#include <cstdint>

#include "common/compress/compression_config.h"

namespace ctxmem::compress {

// Non-sink memory target of IM step `step` (0-based) out of `n_steps` chunks with limit
// `memory_size` (M), spec §5.1: a = floor(M / n); step >= n - 1 gives M; otherwise the
// schedule's formula truncated to an integer. Out-of-range inputs are clamped
// (n_steps to >= 1, step and memory_size to >= 0); callers validate them first.
int64_t IncrementalMemoryTarget(Schedule schedule, int64_t step, int64_t n_steps,
                                int64_t memory_size);

// Share of M that FIXED_INCREMENTAL step `step` adds to the memory (spec §4.3, §12.7): an even
// split of M into n_steps parts whose sizes differ by at most one, the first M mod n parts one
// larger. Steps past the plan (a stream longer than planned) get floor(M / n), at least 1 when
// M >= 1. Inputs are clamped as in IncrementalMemoryTarget.
int64_t FixedIncrementalShare(int64_t step, int64_t n_steps, int64_t memory_size);

}  // namespace ctxmem::compress
