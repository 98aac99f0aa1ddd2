#pragma once
// Peak resident set size of this process (Linux /proc), for the memory columns of evaluation
// tables and benchmarks: read VmHWM from /proc/self/status, and reset the high-water mark
// between settings by writing "5" to /proc/self/clear_refs (Linux >= 4.0).
// Thread-safety: free functions; concurrent calls are fine, but a reset affects the whole
// process, so per-setting peaks are only meaningful when one setting runs at a time.

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ctxmem::compress {

// VmHWM in bytes. NotFound when /proc/self/status cannot be read (not Linux); Internal when
// it has no parsable VmHWM line.
absl::StatusOr<int64_t> PeakRssBytes();

// Current VmRSS in bytes; errors as PeakRssBytes().
absl::StatusOr<int64_t> CurrentRssBytes();

// Sets the high-water mark back to the current RSS. FailedPrecondition when the kernel does not
// allow it (no /proc/self/clear_refs, or writing is refused); the peak then keeps counting from
// the process start and callers should say so.
absl::Status ResetPeakRss();

}  // namespace ctxmem::compress
