#include "common/service/compress_request_parser.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

namespace ctxmem::service {
namespace {

using google::protobuf::internal::WireFormatLite;

constexpr int kStartField = 1;   // CompressRequest.start
constexpr int kTextField = 2;    // CompressRequest.text
constexpr int kTokensField = 3;  // CompressRequest.tokens

}  // namespace

absl::StatusOr<CompressRequestPiece> ParseCompressRequest(absl::string_view wire) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(wire.data()),
                                            static_cast<int>(wire.size()));
  const absl::Status malformed =
      absl::InvalidArgumentError("malformed ctxmem.v1.CompressRequest: bad wire format");
  CompressRequestPiece piece;
  const int end = static_cast<int>(wire.size());
  while (in.CurrentPosition() < end) {
    // A tag as protobuf's parser reads one: a varint of at most 5 bytes (bits past 32
    // dropped) with a field number >= 1. CodedInputStream::ReadTag also takes longer varints,
    // so bytes protobuf refuses would pass (found by tests/fuzz compress_request).
    const int tag_start = in.CurrentPosition();
    uint64_t tag64 = 0;
    if (!in.ReadVarint64(&tag64) || in.CurrentPosition() - tag_start > 5 ||
        WireFormatLite::GetTagFieldNumber(static_cast<uint32_t>(tag64)) == 0) {
      return malformed;
    }
    const uint32_t tag = static_cast<uint32_t>(tag64);
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    const bool delimited =
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
    if (!delimited || (field != kStartField && field != kTextField && field != kTokensField)) {
      if (!WireFormatLite::SkipField(&in, tag)) return malformed;
      continue;
    }
    uint32_t length = 0;
    std::string bytes;
    if (!in.ReadVarint32(&length) || !in.ReadString(&bytes, static_cast<int>(length))) {
      return malformed;
    }
    // Protobuf's oneof semantics: another payload field replaces the piece; the same message
    // field again merges into it (repeated ids append), found by tests/fuzz compress_request.
    const bool merge = (field == kStartField && piece.kind == CompressRequestPiece::Kind::kStart) ||
                       (field == kTokensField && piece.kind == CompressRequestPiece::Kind::kTokens);
    if (!merge) piece = CompressRequestPiece();
    if (field == kTextField) {
      piece.kind = CompressRequestPiece::Kind::kText;
      piece.text = std::move(bytes);
    } else if (field == kStartField) {
      piece.kind = CompressRequestPiece::Kind::kStart;
      if (!piece.start.MergeFromString(bytes)) {
        return absl::InvalidArgumentError(
            "malformed ctxmem.v1.CompressRequest: its start (ctxmem.v1.CompressStart) does not "
            "parse (is every string in it valid UTF-8?)");
      }
    } else {
      piece.kind = CompressRequestPiece::Kind::kTokens;
      if (!piece.tokens.MergeFromString(bytes)) {
        return absl::InvalidArgumentError(
            "malformed ctxmem.v1.CompressRequest: its tokens (ctxmem.v1.TokenIds) do not parse");
      }
    }
  }
  if (in.CurrentPosition() != end) return malformed;
  return piece;
}

}  // namespace ctxmem::service
