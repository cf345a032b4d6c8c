// Small string utilities shared across temper: validation of untrusted text and suggestions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace temper {

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool IsValidUtf8(std::string_view s);

// Levenshtein distance between a and b.
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate closest to `word` when it is close enough to be a plausible typo, else "".
std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates);

// `s` escaped for inclusion inside a JSON string literal (quotes not added).
std::string JsonEscape(std::string_view s);

}  // namespace temper
