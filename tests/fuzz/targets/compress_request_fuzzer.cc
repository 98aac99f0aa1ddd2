// CompressRequest parsing from raw bytes (common/service/compress_request_parser, the
// compressor's hand-written wire reader), differentially against protobuf's own parser: the
// same bytes must be accepted or refused by both, and accepted ones must carry the same
// payload (protobuf's oneof semantics: the last payload field wins, a repeated submessage
// field merges).
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/service/compress_request_parser.h"
#include "common/service/raw_message.h"
#include "ctxmem/v1/compressor.pb.h"
#include "google/protobuf/stubs/logging.h"
#include "tests/fuzz/targets/fuzz_util.h"

// protobuf logs every string field with invalid UTF-8 it refuses: quiet, fuzzing is faster.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using ctxmem::service::CompressRequestPiece;
  const absl::string_view wire(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<CompressRequestPiece> ours = ctxmem::service::ParseCompressRequest(wire);
  ctxmem::v1::CompressRequest theirs;
  const bool theirs_ok = theirs.ParseFromArray(data, static_cast<int>(size));
  CTXMEM_FUZZ_CHECK(ours.ok() == theirs_ok);
  // The generic raw parser (every other RPC) agrees with protobuf too.
  ctxmem::v1::CompressRequest raw;
  CTXMEM_FUZZ_CHECK(ctxmem::service::ParseRawMessage(wire, &raw).ok() == theirs_ok);
  if (!theirs_ok) return 0;
  using Case = ctxmem::v1::CompressRequest::MsgCase;
  switch (theirs.msg_case()) {
    case Case::kStart:
      CTXMEM_FUZZ_CHECK(ours->kind == CompressRequestPiece::Kind::kStart);
      CTXMEM_FUZZ_CHECK(ours->start.SerializeAsString() == theirs.start().SerializeAsString());
      break;
    case Case::kText:
      CTXMEM_FUZZ_CHECK(ours->kind == CompressRequestPiece::Kind::kText);
      CTXMEM_FUZZ_CHECK(ours->text == theirs.text());
      break;
    case Case::kTokens:
      CTXMEM_FUZZ_CHECK(ours->kind == CompressRequestPiece::Kind::kTokens);
      CTXMEM_FUZZ_CHECK(ours->tokens.SerializeAsString() == theirs.tokens().SerializeAsString());
      break;
    default:
      CTXMEM_FUZZ_CHECK(ours->kind == CompressRequestPiece::Kind::kNone);
  }
  return 0;
}
