#include "libs/tokenizer/byte_level.h"

#include <array>

#include "libs/common/strings.h"
#include "libs/tokenizer/utf8.h"

namespace temper::tokenizer {
namespace {

struct Tables {
  std::array<char32_t, 256> byte_to_cp{};
  std::array<int16_t, 324> cp_to_byte{};  // every alphabet code point is below 256 + 68

  Tables() {
    cp_to_byte.fill(-1);
    auto visible = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      char32_t cp = visible(b) ? char32_t(b) : char32_t(next++);
      byte_to_cp[b] = cp;
      cp_to_byte[cp] = static_cast<int16_t>(b);
    }
  }
};

const Tables& GetTables() {
  static const Tables* tables = new Tables();
  return *tables;
}

}  // namespace

char32_t ByteToCodePoint(uint8_t b) { return GetTables().byte_to_cp[b]; }

int CodePointToByte(char32_t cp) {
  const auto& t = GetTables().cp_to_byte;
  return cp < t.size() ? t[cp] : -1;
}

std::optional<std::string> ByteLevelToBytes(std::string_view token) {
  if (!IsValidUtf8(token)) return std::nullopt;
  std::string bytes;
  bytes.reserve(token.size());
  size_t pos = 0;
  while (pos < token.size()) {
    int b = CodePointToByte(DecodeUtf8(token, &pos));
    if (b < 0) return std::nullopt;
    bytes.push_back(static_cast<char>(b));
  }
  return bytes;
}

std::string BytesToByteLevel(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) AppendUtf8(ByteToCodePoint(b), &out);
  return out;
}

}  // namespace temper::tokenizer
