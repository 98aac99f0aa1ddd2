// GenerateRequest / ScoreRequest from raw bytes (common/service/raw_message, then
// common/service/decoder_request with the bundled model's tokenizer): any bytes end in an error
// or in inputs within the server's limits. Input byte 0 picks the message; the rest is its wire
// encoding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/blob/blob_id.h"
#include "common/service/decoder_request.h"
#include "common/service/raw_message.h"
#include "ctxmem/v1/decoder.pb.h"
#include "google/protobuf/stubs/logging.h"
#include "tests/fuzz/targets/fuzz_util.h"

// protobuf logs every string field with invalid UTF-8 it refuses: quiet, fuzzing is faster.
// The tokenizer is loaded here, before libFuzzer's per-input timer starts (bpe_fuzzer.cc).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  ctxmem::fuzz::SmolLm2Tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ctxmem::service;
  if (size == 0) return 0;
  const absl::string_view wire(reinterpret_cast<const char*>(data) + 1, size - 1);
  const ctxmem::tokenizer::Tokenizer& tok = ctxmem::fuzz::SmolLm2Tokenizer();
  DecoderLimits limits;
  limits.max_new_tokens = 64;
  limits.max_prompt_tokens = 256;
  limits.max_memories = 4;
  limits.max_stop_strings = 4;
  limits.max_stop_bytes = 32;
  if (data[0] & 1) {
    ctxmem::v1::GenerateRequest request;
    if (!ParseRawMessage(wire, &request).ok()) return 0;
    auto in = ParseGenerateRequest(request, tok, limits);
    if (!in.ok()) return 0;
    CTXMEM_FUZZ_CHECK(static_cast<int64_t>(in->memory_ids.size()) <= limits.max_memories);
    for (const auto& id : in->memory_ids) CTXMEM_FUZZ_CHECK(ctxmem::blob::IsMemoryId(id));
    CTXMEM_FUZZ_CHECK(static_cast<int64_t>(in->prompt_ids.size()) <= limits.max_prompt_tokens);
    CTXMEM_FUZZ_CHECK(!in->prompt_ids.empty());
    for (int32_t id : in->prompt_ids) CTXMEM_FUZZ_CHECK(id >= 0 && id < tok.n_vocab());
    CTXMEM_FUZZ_CHECK(in->options.max_new_tokens >= 0 &&
                      in->options.max_new_tokens <= limits.max_new_tokens);
  } else {
    ctxmem::v1::ScoreRequest request;
    if (!ParseRawMessage(wire, &request).ok()) return 0;
    auto in = ParseScoreRequest(request, tok, limits);
    if (!in.ok()) return 0;
    CTXMEM_FUZZ_CHECK(static_cast<int64_t>(in->memory_ids.size()) <= limits.max_memories);
    CTXMEM_FUZZ_CHECK(!in->continuation_ids.empty());
    CTXMEM_FUZZ_CHECK(static_cast<int64_t>(in->prompt_ids.size() + in->continuation_ids.size()) <=
                      limits.max_prompt_tokens);
    for (int32_t id : in->prompt_ids) CTXMEM_FUZZ_CHECK(id >= 0 && id < tok.n_vocab());
    for (int32_t id : in->continuation_ids) CTXMEM_FUZZ_CHECK(id >= 0 && id < tok.n_vocab());
  }
  return 0;
}
