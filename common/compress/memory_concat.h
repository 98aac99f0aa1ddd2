#pragma once
// ConcatMemories: several memories read as one past, in order (a GenerateRequest with several
// memory_ids). The entries of the first memory come first. Position modes:
//   slots:    entries take positions 0..total-1 in order, decoding continues at total;
//   original: every later memory's src (and so its RoPE positions) is shifted by the
//             n_tokens of the memories before it, as if their sources had been one stream;
//             decoding continues after the sum of all n_tokens.
// In both modes src is shifted the same way, so it stays an index into the joined stream.
// Only the first memory's sinks count as sinks (n_sinks of the result).
// Thread-safety: a free function; the inputs are only read (the result owns new tensors, or
// shares the single input's tensors when there is exactly one memory).

#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/compress/memory.h"

namespace ctxmem::compress {

// `memories` are borrowed for the call. Empty memories contribute only their n_tokens.
// InvalidArgument naming the memory index when the memories disagree on the position mode,
// layer count, kv heads, head_dim or dtype; an empty list gives an empty memory. Internal for
// a torch failure.
absl::StatusOr<Memory> ConcatMemories(absl::Span<const Memory* const> memories);

}  // namespace ctxmem::compress
