#include "common/tokenizer/byte_unicode.h"

#include <array>

#include "common/tokenizer/utf8.h"

namespace ctxmem::tokenizer {
namespace {

constexpr uint32_t kCodePointLimit = 0x100 + 68;  // the alphabet lies in [0, 0x144)

bool IsSelfSpelled(int b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct Alphabet {
  std::array<std::string, 256> spelling;           // byte -> UTF-8 of its code point
  std::array<int16_t, kCodePointLimit> byte_of{};  // code point -> byte, -1 = not in alphabet

  Alphabet() {
    byte_of.fill(-1);
    uint32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      const uint32_t cp = IsSelfSpelled(b) ? static_cast<uint32_t>(b) : next++;
      AppendUtf8(cp, &spelling[b]);
      byte_of[cp] = static_cast<int16_t>(b);
    }
  }
};

const Alphabet& GetAlphabet() {
  static const Alphabet* const alphabet = new Alphabet();
  return *alphabet;
}

}  // namespace

std::string_view ByteToUnicode(uint8_t byte) { return GetAlphabet().spelling[byte]; }

int ByteFromCodePoint(uint32_t code_point) {
  return code_point < kCodePointLimit ? GetAlphabet().byte_of[code_point] : -1;
}

void AppendByteLevel(std::string_view bytes, std::string* out) {
  const Alphabet& alphabet = GetAlphabet();
  for (char c : bytes) out->append(alphabet.spelling[static_cast<uint8_t>(c)]);
}

bool DecodeByteLevel(std::string_view token_text, std::string* out) {
  if (FindInvalidUtf8(token_text) >= 0) return false;
  const size_t old_size = out->size();
  size_t pos = 0;
  while (pos < token_text.size()) {
    uint32_t cp = 0;
    pos += DecodeUtf8Char(token_text, pos, &cp);
    const int byte = ByteFromCodePoint(cp);
    if (byte < 0) {
      out->resize(old_size);
      return false;
    }
    out->push_back(static_cast<char>(byte));
  }
  return true;
}

}  // namespace ctxmem::tokenizer
