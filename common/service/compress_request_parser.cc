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
  for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
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
    piece = CompressRequestPiece();
    if (field == kTextField) {
      piece.kind = CompressRequestPiece::Kind::kText;
      piece.text = std::move(bytes);
    } else if (field == kStartField) {
      piece.kind = CompressRequestPiece::Kind::kStart;
      if (!piece.start.ParseFromString(bytes)) {
        return absl::InvalidArgumentError(
            "malformed ctxmem.v1.CompressRequest: its start (ctxmem.v1.CompressStart) does not "
            "parse (is every string in it valid UTF-8?)");
      }
    } else {
      piece.kind = CompressRequestPiece::Kind::kTokens;
      if (!piece.tokens.ParseFromString(bytes)) {
        return absl::InvalidArgumentError(
            "malformed ctxmem.v1.CompressRequest: its tokens (ctxmem.v1.TokenIds) do not parse");
      }
    }
  }
  if (!in.ConsumedEntireMessage() || in.CurrentPosition() != static_cast<int>(wire.size())) {
    return malformed;
  }
  return piece;
}

}  // namespace ctxmem::service
