#include "libs/tokenizer/regex_splitter.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "absl/strings/str_cat.h"
#include "libs/tokenizer/absl_view.h"

namespace temper::tokenizer {
namespace {

// Unicode White_Space, what Oniguruma's \s matches on UTF-8 subjects.
constexpr std::string_view kWhiteSpaceItems =
    "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}"
    "\\x{3000}";

std::string Pcre2Error(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

}  // namespace

absl::StatusOr<std::string> OnigurumaToPcre2(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 64);
  int class_depth = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      char e = pattern[i + 1];
      ++i;
      if (e == 's') {
        if (class_depth > 0) {
          out.append(kWhiteSpaceItems.data(), kWhiteSpaceItems.size());
        } else {
          absl::StrAppend(&out, "[", AV(kWhiteSpaceItems), "]");
        }
      } else if (e == 'S') {
        if (class_depth > 0) {
          return absl::UnimplementedError(
              absl::StrCat("regex: \\S inside a character class is not supported: ", AV(pattern)));
        }
        absl::StrAppend(&out, "[^", AV(kWhiteSpaceItems), "]");
      } else {
        out.push_back('\\');
        out.push_back(e);
      }
      continue;
    }
    if (c == '[') {
      ++class_depth;
      out.push_back(c);
      // A ']' right after '[' or '[^' is a literal in both dialects.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out.push_back(pattern[++i]);
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out.push_back(pattern[++i]);
      continue;
    }
    if (c == ']' && class_depth > 0) --class_depth;
    out.push_back(c);
  }
  return out;
}

struct RegexSplitter::Impl {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Impl() {
    if (code) pcre2_code_free(code);
  }
};

RegexSplitter::RegexSplitter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RegexSplitter::~RegexSplitter() = default;

absl::StatusOr<std::unique_ptr<RegexSplitter>> RegexSplitter::Create(
    std::string_view oniguruma_pattern) {
  ASSIGN_OR_RETURN(std::string pattern, OnigurumaToPcre2(oniguruma_pattern));
  auto impl = std::make_unique<Impl>();
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  impl->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                             PCRE2_UTF | PCRE2_UCP, &error, &error_offset, nullptr);
  if (!impl->code) {
    return absl::InvalidArgumentError(absl::StrCat("regex \"", AV(oniguruma_pattern),
                                                   "\" does not compile at offset ", error_offset,
                                                   ": ", Pcre2Error(error)));
  }
  // Without JIT (a platform PCRE2 lacks it) the interpreter gives the same matches, slower.
  impl->jit = pcre2_jit_compile(impl->code, PCRE2_JIT_COMPLETE) == 0;
  return std::unique_ptr<RegexSplitter>(new RegexSplitter(std::move(impl)));
}

absl::Status RegexSplitter::Split(std::string_view text,
                                  absl::FunctionRef<void(std::string_view)> fn) const {
  if (text.empty()) return absl::OkStatus();
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
  if (!md) return absl::ResourceExhaustedError("regex: out of memory for match data");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const size_t length = text.size();
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(md);
  size_t offset = 0;
  size_t emitted = 0;  // end of the last piece handed to fn
  absl::Status status;
  while (offset < length) {
    int rc = impl_->jit ? pcre2_jit_match(impl_->code, subject, length, offset, 0, md, nullptr)
                        : PCRE2_ERROR_JIT_BADOPTION;
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_JIT_BADOPTION) {
      // The interpreter keeps its backtracking state on the heap, so deep patterns still finish.
      rc = pcre2_match(impl_->code, subject, length, offset, PCRE2_NO_UTF_CHECK, md, nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      status = absl::InternalError(absl::StrCat("regex match failed: ", Pcre2Error(rc)));
      break;
    }
    size_t start = ovector[0];
    size_t end = ovector[1];
    if (start > emitted) fn(text.substr(emitted, start - emitted));
    if (end > start) {
      fn(text.substr(start, end - start));
      emitted = end;
      offset = end;
    } else {
      // An empty match: step one code point so the scan always advances.
      emitted = start;
      offset = start + 1;
      while (offset < length && (static_cast<unsigned char>(text[offset]) & 0xC0) == 0x80) {
        ++offset;
      }
    }
  }
  if (status.ok() && emitted < length) fn(text.substr(emitted));
  pcre2_match_data_free(md);
  return status;
}

}  // namespace temper::tokenizer
