#pragma once
// UTF-8 validation and lossy decoding, with the replacement rules of Rust's
// String::from_utf8_lossy (one U+FFFD per maximal invalid subpart), which is what HF
// `tokenizers` applies when it decodes. Thread-safety: stateless functions.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ctxmem::tokenizer {

// Byte offset of the first byte that does not start a well-formed UTF-8 sequence (overlong
// forms, surrogates and code points above U+10FFFF are ill-formed), or -1 when `text` is valid.
int64_t FindInvalidUtf8(std::string_view text);

// Number of bytes at the end of `bytes` that form a well-formed but unfinished sequence (the
// first 1..3 bytes of a character): 0 when the text ends on a character boundary.
size_t IncompleteUtf8TailLength(std::string_view bytes);

// `bytes` as valid UTF-8: every ill-formed or truncated sequence becomes U+FFFD.
std::string Utf8Lossy(std::string_view bytes);

// Decodes the character at `pos` of valid UTF-8 `text`; returns its length in bytes (1..4)
// and stores the code point. Precondition: `text` is valid and pos < text.size().
size_t DecodeUtf8Char(std::string_view text, size_t pos, uint32_t* code_point);

// Appends the UTF-8 encoding of `code_point` (<= U+10FFFF, not a surrogate) to `out`.
void AppendUtf8(uint32_t code_point, std::string* out);

}  // namespace ctxmem::tokenizer
