#pragma once
// ChunkReader: reads a TokenSource one chunk at a time for the compression driver (compressor.h)
// and the memory probe (memory_probe.h): exactly `want` tokens unless the stream ends first,
// with a one-token lookahead so the true last chunk is known even for streams of unknown
// length (the IM schedule must reach M on that step, spec §5.1, §12.8).
// Thread-safety: not thread-safe; one reader per source.

#include <absl/status/status.h>

#include <cstdint>
#include <vector>

#include "common/compress/token_source.h"

namespace ctxmem::compress {

class ChunkReader {
 public:
  explicit ChunkReader(TokenSource& source) : source_(source) {}  // borrowed

  // Replaces *chunk with the next up to `want` (>= 1) tokens, starting with the token held back
  // by the previous lookahead; *is_last is true when no token follows them. After the last
  // chunk, further calls give an empty chunk. Source errors are returned as they are.
  absl::Status Next(int64_t want, std::vector<int32_t>* chunk, bool* is_last);

 private:
  TokenSource& source_;
  std::vector<int32_t> lookahead_;  // at most one token read past the previous chunk
  bool ended_ = false;              // the source returned 0
};

}  // namespace ctxmem::compress
