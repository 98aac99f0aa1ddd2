#pragma once
// ChunkPlan: how many tokens each compression step reads (spec §1 step 1, §5.3, §12.8) and the
// step count n that IM schedules are computed over.
// Thread-safety: immutable after Create(); const methods only.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/compress/compression_config.h"

namespace ctxmem::compress {

// What a plan was computed from.
enum class PlanBasis {
  kTotalLength,     // the source said how many tokens it holds
  kExpectedLength,  // a stream of unknown length; config.expected_length was used instead
  kUnknownLength,   // neither: fixed chunks, and IM targets are M from the first step
};
std::string_view PlanBasisName(PlanBasis basis);

class ChunkPlan {
 public:
  // Plans for `config` (validated by the caller) and `total_length` tokens, or -1 when the
  // source does not know its length. Without a total length, config.expected_length (if > 0)
  // stands in for it; without either, chunks are fixed and n_steps() is 1 (§5.1 then gives M at
  // every step). InvalidArgument when decremental chunks would have a size <= 0 (§12.8); the
  // message names total/expected length, chunk_size, memory_size, schedule and the bad chunk.
  static absl::StatusOr<ChunkPlan> Create(const CompressionConfig& config, int64_t total_length);

  // Tokens step `step` reads: the planned size while step < planned_sizes().size(), then the
  // steady size (C for fixed chunks; for decremental ones the size that keeps memory + chunk at
  // the plan's constant once the memory is full, or C if that is not positive).
  int64_t chunk_size(int64_t step) const;
  // n of §5.1 / §5.3: planned number of chunks (>= 1).
  int64_t n_steps() const { return n_steps_; }
  PlanBasis basis() const { return basis_; }
  bool decremental() const { return decremental_; }
  // Chunk sizes of the planned length, in order; they sum to planned_length(). Empty for
  // kUnknownLength.
  const std::vector<int64_t>& planned_sizes() const { return planned_sizes_; }
  int64_t planned_length() const { return planned_length_; }  // -1 for kUnknownLength
  // One line for logs and results, e.g. "decremental chunks from total_length=16384: n=8".
  std::string Describe() const;

 private:
  PlanBasis basis_ = PlanBasis::kUnknownLength;
  bool decremental_ = false;
  bool decremental_requested_ = false;
  int64_t n_steps_ = 1;
  int64_t planned_length_ = -1;
  int64_t steady_size_ = 1;  // tokens per step past the plan
  std::vector<int64_t> planned_sizes_;
};

// Decremental chunk sizes of spec §5.3 for `length` tokens: c̄ = floor(L / n),
// m̄ = floor(sum_{i<n-1} m_i / (n - 1)), size_0 = c̄, size_i = c̄ + m̄ - m_{i-1}, the last one
// L - sum of the others; n = 1 gives {L}. Sizes may be <= 0 here; ChunkPlan::Create rejects
// those. Preconditions: length >= 1, chunk_size >= 1, memory_size >= 0.
std::vector<int64_t> DecrementalChunkSizes(int64_t length, int64_t chunk_size, int64_t memory_size,
                                           Schedule schedule);

}  // namespace ctxmem::compress
