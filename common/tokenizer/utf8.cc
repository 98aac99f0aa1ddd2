#include "common/tokenizer/utf8.h"

// Well-formed sequences (Unicode 15, table 3-7), by lead byte:
//   00..7F                        one byte
//   C2..DF 80..BF                 two
//   E0 A0..BF 80..BF / ED 80..9F 80..BF / E1..EC,EE..EF 80..BF 80..BF
//   F0 90..BF 80..BF 80..BF / F4 80..8F 80..BF 80..BF / F1..F3 80..BF 80..BF 80..BF
// A "maximal subpart" is the longest prefix of a well-formed sequence found in the input; each
// one that is not a whole character is replaced by a single U+FFFD.

namespace ctxmem::tokenizer {
namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

// Result of looking at the sequence that starts at one position.
struct Unit {
  size_t length = 0;       // bytes of the (possibly partial) well-formed prefix, >= 1
  bool complete = false;   // a whole character
  bool truncated = false;  // a valid prefix cut short by the end of the input
};

Unit ScanUnit(std::string_view s, size_t pos) {
  const auto b0 = static_cast<uint8_t>(s[pos]);
  if (b0 < 0x80) return {1, true, false};
  size_t need = 0;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {1, false, false};
  }
  size_t k = 1;
  while (k < need) {
    if (pos + k >= s.size()) return {k, false, true};
    const auto b = static_cast<uint8_t>(s[pos + k]);
    const uint8_t min = k == 1 ? lo : 0x80;
    const uint8_t max = k == 1 ? hi : 0xBF;
    if (b < min || b > max) return {k, false, false};
    ++k;
  }
  return {need, true, false};
}

}  // namespace

int64_t FindInvalidUtf8(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    // ASCII fast path.
    if (static_cast<uint8_t>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const Unit unit = ScanUnit(text, pos);
    if (!unit.complete) return static_cast<int64_t>(pos);
    pos += unit.length;
  }
  return -1;
}

size_t IncompleteUtf8TailLength(std::string_view bytes) {
  // Scanned from the start: a unit boundary is only known there.
  size_t pos = 0;
  while (pos < bytes.size()) {
    const Unit unit = ScanUnit(bytes, pos);
    if (unit.truncated) return bytes.size() - pos;
    pos += unit.length;
  }
  return 0;
}

std::string Utf8Lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    const Unit unit = ScanUnit(bytes, pos);
    if (unit.complete) {
      out.append(bytes.substr(pos, unit.length));
    } else {
      out.append(kReplacement);
    }
    pos += unit.length;
  }
  return out;
}

size_t DecodeUtf8Char(std::string_view text, size_t pos, uint32_t* code_point) {
  const auto b0 = static_cast<uint8_t>(text[pos]);
  if (b0 < 0x80) {
    *code_point = b0;
    return 1;
  }
  size_t n = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : 2;
  uint32_t cp = b0 & (0x7F >> n);
  if (pos + n > text.size()) n = text.size() - pos;
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<uint8_t>(text[pos + k]) & 0x3F);
  *code_point = cp;
  return n;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace ctxmem::tokenizer
