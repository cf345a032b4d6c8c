#include "libs/tokenizer/nfc.h"

#include <utf8proc.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace temper::tokenizer {
namespace {

bool IsAscii(unsigned char c) { return c < 0x80; }

}  // namespace

// NFC is local: no canonical composition has an ASCII second element and ASCII characters are
// starters that never decompose, so the text can be cut before any ASCII character and each
// piece normalized on its own. Only pieces holding non-ASCII characters go to utf8proc; each
// starts at the ASCII character before its non-ASCII run (a base a combining mark may join).
absl::StatusOr<std::string_view> NormalizeNfc(std::string_view text, std::string* storage) {
  const size_t n = text.size();
  size_t i = 0;
  while (i < n && IsAscii(static_cast<unsigned char>(text[i]))) ++i;
  if (i == n) return text;

  storage->clear();
  size_t copied = 0;  // text[0, copied) is already in *storage
  bool changed = false;
  while (i < n) {
    // text[i] is the first byte of a non-ASCII run; include the ASCII character before it.
    size_t start = i > copied ? i - 1 : i;
    size_t end = i;
    while (end < n && !IsAscii(static_cast<unsigned char>(text[end]))) ++end;
    storage->append(text.data() + copied, start - copied);
    utf8proc_uint8_t* normalized = nullptr;
    utf8proc_ssize_t len = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()) + start,
                                        static_cast<utf8proc_ssize_t>(end - start), &normalized,
                                        static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    if (len < 0) {
      return absl::InternalError(absl::StrCat("NFC: utf8proc failed: ", utf8proc_errmsg(len)));
    }
    std::string_view piece(reinterpret_cast<const char*>(normalized), static_cast<size_t>(len));
    if (piece != text.substr(start, end - start)) changed = true;
    storage->append(piece);
    std::free(normalized);
    copied = end;
    i = end;
    while (i < n && IsAscii(static_cast<unsigned char>(text[i]))) ++i;
  }
  if (!changed) return text;
  storage->append(text.data() + copied, n - copied);
  return std::string_view(*storage);
}

}  // namespace temper::tokenizer
