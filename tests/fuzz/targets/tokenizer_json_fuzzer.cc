// tokenizer.json reader (common/tokenizer/tokenizer_spec_json + Tokenizer::Create): any
// tokenizer.json / tokenizer_config.json text must end in an error or a tokenizer that
// encodes and decodes a short text without crashing. Input: config bytes, '\0', tokenizer.json
// (no '\0': all of it is tokenizer.json).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/tokenizer_spec.h"
#include "tests/fuzz/targets/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ctxmem::tokenizer;
  std::string_view all(reinterpret_cast<const char*>(data), size);
  std::string_view config, json = all;
  if (const size_t nul = all.find('\0'); nul != std::string_view::npos) {
    config = all.substr(0, nul);
    json = all.substr(nul + 1);
  }
  auto spec = TokenizerSpecFromJsonText(json, config);
  if (!spec.ok()) return 0;
  auto tok = Tokenizer::Create(*std::move(spec));
  if (!tok.ok()) return 0;
  const Tokenizer& t = **tok;
  for (std::string_view text : {"Hello world, <|im_start|>user\n  12345 éè 漢字 🙂\n", "",
                                " ", "aaaaaaaaaaaaaaaaaaaa"}) {
    auto ids = t.Encode(text, {.add_special = true});
    if (!ids.ok()) continue;
    for (int32_t id : *ids) CTXMEM_FUZZ_CHECK(id >= 0 && id < t.n_vocab());
    (void)t.Decode(*ids);
    StreamingDecoder stream(t);
    for (int32_t id : *ids) (void)stream.Push(id);
    (void)stream.Flush();
  }
  for (int32_t id : {0, 1, t.n_vocab() - 1, t.n_vocab(), -1}) (void)t.TokenBytes(id);
  return 0;
}
