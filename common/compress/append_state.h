#pragma once
// AppendState: what continuing a sealed memory with more tokens needs besides the memory itself
// (incremental append, docs/compression.md "Incremental append"): the chunk steps done since
// the first token, the length the chunk plan was made for (IM schedules, FIXED_INCREMENTAL
// shares and IMDC chunk sizes depend on it), whether the memory's ranks are meaningful (h2o's
// accumulated attention, DOUBLE_COMPRESS's ordering), and DOUBLE_COMPRESS's hidden store.
// Stored in a blob as the "ctxmem.append_state" metadata JSON plus tensors (memory_codec.h).
// Thread-safety: plain value types.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/compress/memory.h"

namespace ctxmem::compress {

struct AppendState {
  int64_t n_steps_done = 0;     // chunks consumed since the first token (bases included)
  int64_t planned_length = -1;  // tokens the chunk plan was made for; -1 = unknown length
  bool has_rank = false;        // LayerMemory::rank carries state the pruner or type reads
  // DOUBLE_COMPRESS only: the hidden store H per layer (no sinks, §4.4); empty otherwise.
  std::vector<LayerMemory> hidden;

  // {"n_steps_done":..,"planned_length":..,"rank":..,"hidden":..} (hidden: whether stored).
  std::string ToJson() const;
  // Parses ToJson()'s form into the scalar fields (hidden left empty; `*has_hidden` says
  // whether the blob stores it). DataLoss naming the problem for anything else.
  static absl::StatusOr<AppendState> FromJson(const std::string& json, bool* has_hidden);
};

// A memory that can be continued: e.g. a blob decoded by DecodeResumableMemory.
struct ResumableMemory {
  Memory memory;
  AppendState state;
};

}  // namespace ctxmem::compress
