#include "common/compress/token_source.h"

#include <algorithm>

namespace ctxmem::compress {

absl::StatusOr<int64_t> SpanTokenSource::Read(int64_t max_tokens, std::vector<int32_t>* out) {
  const size_t n = std::min<size_t>(std::max<int64_t>(max_tokens, 0), tokens_.size() - next_);
  out->insert(out->end(), tokens_.begin() + next_, tokens_.begin() + next_ + n);
  next_ += n;
  return static_cast<int64_t>(n);
}

}  // namespace ctxmem::compress
