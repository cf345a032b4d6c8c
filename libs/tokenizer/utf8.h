// UTF-8 helpers the tokenizer needs on its hot paths: decode one code point, encode one, and
// Rust-compatible lossy conversion of byte strings (each maximal invalid subpart becomes U+FFFD).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace temper::tokenizer {

// Decodes the code point starting at s[*pos] and advances *pos past it.
// REQUIRES: s is valid UTF-8 and *pos < s.size() sits on a code point boundary.
inline char32_t DecodeUtf8(std::string_view s, size_t* pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + *pos;
  unsigned char c = p[0];
  if (c < 0x80) {
    *pos += 1;
    return c;
  }
  if (c < 0xE0) {
    *pos += 2;
    return (char32_t(c & 0x1F) << 6) | (p[1] & 0x3F);
  }
  if (c < 0xF0) {
    *pos += 3;
    return (char32_t(c & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
  }
  *pos += 4;
  return (char32_t(c & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) |
         (char32_t(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

// Appends the UTF-8 encoding of cp (REQUIRES: a Unicode scalar value) to *out.
void AppendUtf8(char32_t cp, std::string* out);

// Appends `bytes` to *out as valid UTF-8, replacing each maximal invalid subpart with U+FFFD
// exactly as Rust's String::from_utf8_lossy and the WHATWG decoder do.
void AppendUtf8Lossy(std::string_view bytes, std::string* out);

}  // namespace temper::tokenizer
