// Unicode NFC through utf8proc, skipping ASCII stretches (which NFC never changes).
#pragma once

#include <string>
#include <string_view>

#include "libs/common/status.h"

namespace temper::tokenizer {

// `text` in Normalization Form C. Returns a view of `text` itself when nothing changes (the
// common case) and otherwise a view of *storage, which it overwrites.
// REQUIRES: text is valid UTF-8. Fails only if utf8proc does (out of memory).
absl::StatusOr<std::string_view> NormalizeNfc(std::string_view text, std::string* storage);

}  // namespace temper::tokenizer
