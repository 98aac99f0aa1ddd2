#pragma once
// GPT-2's byte-level alphabet (`bytes_to_unicode` in openai/gpt-2 encoder.py, also in HF
// `tokenizers`): every byte is spelled as one printable code point, so that byte-level BPE
// tokens are readable strings ("Ġthe" is " the"). Printable Latin-1 bytes ('!'..'~',
// '¡'..'¬', '®'..'ÿ') stand for themselves; the other 68 bytes map to U+0100 + n in byte order.
// Thread-safety: stateless functions over a constant table.

#include <cstdint>
#include <string>
#include <string_view>

namespace ctxmem::tokenizer {

// The UTF-8 spelling of `byte` in the alphabet ("Ġ" for 0x20).
std::string_view ByteToUnicode(uint8_t byte);

// The byte a code point of the alphabet stands for, or -1 when it is not in the alphabet.
int ByteFromCodePoint(uint32_t code_point);

// Appends the alphabet spelling of every byte of `bytes` to `out`.
void AppendByteLevel(std::string_view bytes, std::string* out);

// Decodes a token spelled in the alphabet into raw bytes, appended to `out`. Returns false
// (leaving `out` unchanged) when `token_text` is not valid UTF-8 or has a code point outside
// the alphabet; HF's ByteLevel decoder then keeps the token's text as it is.
bool DecodeByteLevel(std::string_view token_text, std::string* out);

}  // namespace ctxmem::tokenizer
