// The GPT-2 "ByteLevel" alphabet: every byte stands for one printable code point, so that
// byte-level BPE vocabularies can be stored as text in tokenizer.json.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace temper::tokenizer {

// The code point that stands for byte b (printable ASCII and most of Latin-1 map to themselves,
// the other 68 bytes to U+0100 and up, in byte order).
char32_t ByteToCodePoint(uint8_t b);

// The byte that code point cp stands for, or -1 when cp is not in the alphabet.
int CodePointToByte(char32_t cp);

// Raw bytes of a byte-level token string (UTF-8 of alphabet code points); nullopt when the
// string is not valid UTF-8 or holds a code point outside the alphabet.
std::optional<std::string> ByteLevelToBytes(std::string_view token);

// The byte-level token string for raw bytes.
std::string BytesToByteLevel(std::string_view bytes);

}  // namespace temper::tokenizer
