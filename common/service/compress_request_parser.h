#pragma once
// Parses a Compress request message from its wire bytes. The compressor reads Compress
// requests raw (ByteBuffer) and parses them here because gRPC's typed callback API reports a
// message that fails to parse exactly like the end of the client's stream (a failed read):
// the server would then compress a truncated context instead of refusing the request. Text
// pieces are `bytes` and may split UTF-8 characters; CompressJob::AddText validates the text
// as one stream and names the byte offset of real encoding errors.
// Thread-safety: a free function.

#include <absl/status/statusor.h>
#include <absl/strings/string_view.h>

#include <string>

#include "ctxmem/v1/compressor.pb.h"

namespace ctxmem::service {

struct CompressRequestPiece {
  enum class Kind { kNone, kStart, kText, kTokens };
  Kind kind = Kind::kNone;
  ctxmem::v1::CompressStart start;  // kStart
  std::string text;                 // kText: raw bytes, not validated here
  ctxmem::v1::TokenIds tokens;      // kTokens
};

// Reads a serialized ctxmem.v1.CompressRequest. As protobuf does for a oneof, the last of
// start/text/tokens present wins; unknown fields are skipped. InvalidArgument for malformed
// wire data or a start/tokens submessage that does not parse (e.g. invalid UTF-8 in a
// config string).
absl::StatusOr<CompressRequestPiece> ParseCompressRequest(absl::string_view wire);

}  // namespace ctxmem::service
