// Debian's Abseil is built with its own absl::string_view (not std::string_view); this converts
// at the boundary so temper's code can use std::string_view throughout.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace temper::tokenizer {

inline absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace temper::tokenizer
