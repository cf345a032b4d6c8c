// Pre-tokenization by regex: Hugging Face's Split pre-tokenizer with behaviour "Isolated", run on
// PCRE2 (UTF + UCP + JIT) with the pattern translated from Oniguruma's dialect.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "libs/common/status.h"

namespace temper::tokenizer {

// Rewrites an Oniguruma pattern (what tokenizer.json's "Regex" holds) for PCRE2. PCRE2's UCP `\s`
// also matches U+180E, which Oniguruma's (Unicode White_Space) does not, so `\s` and `\S` become
// explicit White_Space classes. Fails on `\S` inside a character class (no need so far).
absl::StatusOr<std::string> OnigurumaToPcre2(std::string_view pattern);

// A compiled split pattern. Immutable; Split is safe to call from many threads at once.
class RegexSplitter {
 public:
  // Compiles `oniguruma_pattern` (translated by OnigurumaToPcre2) with UTF, UCP and JIT. Fails
  // with InvalidArgument naming the offset when PCRE2 rejects it.
  static absl::StatusOr<std::unique_ptr<RegexSplitter>> Create(std::string_view oniguruma_pattern);
  ~RegexSplitter();
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;

  // Calls fn for every piece of `text` in order: each match, and each non-empty stretch between
  // matches (so the pieces concatenate back to `text`).
  // REQUIRES: text is valid UTF-8 (not checked again here).
  absl::Status Split(std::string_view text, absl::FunctionRef<void(std::string_view)> fn) const;

 private:
  struct Impl;
  explicit RegexSplitter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace temper::tokenizer
