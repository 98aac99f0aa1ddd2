// Chat template (common/tokenizer/chat_template): a fuzzed Jinja source (or the bundled model's
// own template) and fuzzed messages must render to an error or to ChatML that holds every
// message's turn in order and, when asked, ends with the opening of the assistant turn.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/tokenizer/chat_template.h"
#include "tests/fuzz/targets/fuzz_util.h"

// The tokenizer (a 2 MB tokenizer.json) is loaded here, before libFuzzer's per-input timer
// starts: loaded by the first input, it took over -timeout=10 s on the loaded machine.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ctxmem::fuzz::SmolLm2Tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ctxmem::tokenizer;
  FuzzedDataProvider in(data, size);
  const bool own_template = in.ConsumeBool();
  const bool add_generation_prompt = in.ConsumeBool();
  std::string jinja = own_template ? ctxmem::fuzz::SmolLm2Tokenizer().spec().chat_template
                                   : in.ConsumeRandomLengthString(4096);
  std::vector<ChatMessage> messages;
  while (in.remaining_bytes() > 0 && messages.size() < 16) {
    static const char* kRoles[] = {"system", "user", "assistant"};
    ChatMessage m;
    m.role = in.ConsumeBool() ? kRoles[in.ConsumeIntegralInRange<int>(0, 2)]
                              : in.ConsumeRandomLengthString(16);
    m.content = in.ConsumeRandomLengthString(512);
    messages.push_back(std::move(m));
  }
  auto kind = DetectChatTemplate(jinja);
  if (!kind.ok()) return 0;
  auto out = ApplyChatTemplate(*kind, jinja, messages, add_generation_prompt);
  if (!out.ok()) return 0;
  size_t at = 0;
  for (const ChatMessage& m : messages) {
    const std::string turn = "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    const size_t found = out->find(turn, at);
    CTXMEM_FUZZ_CHECK(found != std::string::npos);
    at = found + turn.size();
  }
  if (add_generation_prompt) {
    CTXMEM_FUZZ_CHECK(out->size() >= 22 &&
                      out->compare(out->size() - 22, 22, "<|im_start|>assistant\n") == 0);
  }
  return 0;
}
