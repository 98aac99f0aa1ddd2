#pragma once
// TokenSource: where a compression reads its tokens from, incrementally, so that a context of
// any length never has to sit in memory at once (DESIGN.md: peak memory must not depend on the
// context length). SpanTokenSource reads from a caller's buffer.
// Thread-safety: not thread-safe; a source is consumed by one compression.

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"

namespace ctxmem::compress {

class TokenSource {
 public:
  virtual ~TokenSource() = default;
  // Appends up to `max_tokens` (>= 1) next token ids to *out and returns how many; 0 means the
  // stream has ended (and every later call returns 0). Errors from the underlying stream are
  // returned as they are; *out may then hold a partial read.
  virtual absl::StatusOr<int64_t> Read(int64_t max_tokens, std::vector<int32_t>* out) = 0;
  // Total tokens the source will yield, if known before reading; -1 otherwise.
  virtual int64_t total_length() const = 0;
};

// Reads a borrowed span, which must outlive the source. The length is known up front unless
// `announce_length` is false (lets tests stand in for a stream of unknown length).
class SpanTokenSource final : public TokenSource {
 public:
  explicit SpanTokenSource(std::span<const int32_t> tokens, bool announce_length = true)
      : tokens_(tokens), announce_length_(announce_length) {}

  absl::StatusOr<int64_t> Read(int64_t max_tokens, std::vector<int32_t>* out) override;
  int64_t total_length() const override {
    return announce_length_ ? static_cast<int64_t>(tokens_.size()) : -1;
  }

 private:
  std::span<const int32_t> tokens_;
  bool announce_length_;
  size_t next_ = 0;  // index of the next token to read
};

}  // namespace ctxmem::compress
