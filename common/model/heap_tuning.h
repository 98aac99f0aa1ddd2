#pragma once
// Keeps the heap that tensors' temporaries come from mapped between forwards.
//
// A forward allocates and frees many MB-sized activations per layer (at 2048 tokens,
// [2048, 1536] fp32 buffers of 12.6 MB). glibc's malloc serves such blocks with mmap (its
// dynamic threshold stops at 32 MiB) and gives freed heap tops back once they exceed the trim
// threshold, so every forward page-faults its buffers in again and the kernel zeroes each page:
// measured on the 2-vCPU Xeon, page faults and clear_page were ~20 % of a bf16 prefill of 2048
// tokens. TuneHeapForTensors() sets M_MMAP_THRESHOLD = 64 MiB and M_TRIM_THRESHOLD = 128 MiB:
// blocks below 64 MiB come from the heap and up to 128 MiB of free heap top stays mapped.
// The peak resident set does not change (the same buffers are live at the peak); what stays
// resident after a burst is at most the trim threshold above the live set.
//
// Model::Load calls it once per process. It does nothing when CTXMEM_HEAP_TUNING=0, when
// GLIBC_TUNABLES already sets a glibc.malloc tunable (the operator's choice wins) or when the
// C library is not glibc. Thread-safety: safe to call from any thread; applies once.

#include <cstdint>

namespace ctxmem::model {

inline constexpr int64_t kHeapMmapThreshold = int64_t{64} << 20;
inline constexpr int64_t kHeapTrimThreshold = int64_t{128} << 20;

// Returns true when the thresholds were set (by this call or an earlier one).
bool TuneHeapForTensors();

}  // namespace ctxmem::model
