#include "common/compress/chunk_reader.h"

#include "common/status.h"

namespace ctxmem::compress {

absl::Status ChunkReader::Next(int64_t want, std::vector<int32_t>* chunk, bool* is_last) {
  chunk->clear();
  chunk->swap(lookahead_);
  while (!ended_ && static_cast<int64_t>(chunk->size()) < want) {
    CTXMEM_ASSIGN_OR_RETURN(int64_t n,
                            source_.Read(want - static_cast<int64_t>(chunk->size()), chunk));
    if (n == 0) ended_ = true;
  }
  if (!ended_) {
    CTXMEM_ASSIGN_OR_RETURN(int64_t n, source_.Read(1, &lookahead_));
    if (n == 0) ended_ = true;
  }
  *is_last = ended_ && lookahead_.empty();
  return absl::OkStatus();
}

}  // namespace ctxmem::compress
