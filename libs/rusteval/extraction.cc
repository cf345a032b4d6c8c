#include "libs/rusteval/extraction.h"

#include <cctype>
#include <functional>
#include <optional>

namespace temper::rusteval {
namespace {

bool IsIdent(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Walks Rust source, calling `on_brace(pos, depth_after)` for each `{`/`}` outside comments and
// literals, and `on_semicolon(pos, depth)` for each top-level-able `;`. A small lexer, not a
// parser: enough to tell code braces from braces in "strings", 'c', r#"raw"#, // and /* */.
void Scan(std::string_view s, int depth, const std::function<void(size_t, int)>& on_brace,
          const std::function<void(size_t, int)>& on_semicolon) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    char c = s[i];
    if (c == '/' && i + 1 < n && s[i + 1] == '/') {
      while (i < n && s[i] != '\n') ++i;
      continue;
    }
    if (c == '/' && i + 1 < n && s[i + 1] == '*') {
      int nest = 1;
      i += 2;
      while (i < n && nest > 0) {
        if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
          ++nest;
          i += 2;
        } else if (s[i] == '*' && i + 1 < n && s[i + 1] == '/') {
          --nest;
          i += 2;
        } else {
          ++i;
        }
      }
      continue;
    }
    // Raw strings: r"..", r#".."#, br#".."# (the identifier char before must not continue a name).
    if ((c == 'r' || (c == 'b' && i + 1 < n && s[i + 1] == 'r')) && (i == 0 || !IsIdent(s[i - 1]))) {
      size_t j = i + (c == 'b' ? 2 : 1);
      size_t hashes = 0;
      while (j < n && s[j] == '#') {
        ++hashes;
        ++j;
      }
      if (j < n && s[j] == '"') {
        std::string close = "\"" + std::string(hashes, '#');
        size_t end = s.find(close, j + 1);
        i = end == std::string_view::npos ? n : end + close.size();
        continue;
      }
    }
    if (c == '"') {
      ++i;
      while (i < n && s[i] != '"') i += (s[i] == '\\') ? 2 : 1;
      ++i;
      continue;
    }
    if (c == '\'') {
      // A char literal ('x', '\n', '\u{1F600}', '{') or a lifetime/label ('a, 'static).
      if (i + 2 < n && s[i + 1] == '\\') {
        size_t end = s.find('\'', i + 2);
        i = end == std::string_view::npos ? n : end + 1;
        continue;
      }
      if (i + 2 < n && s[i + 2] == '\'') {
        i += 3;
        continue;
      }
      // Multi-byte UTF-8 char literal.
      if (i + 1 < n && (static_cast<unsigned char>(s[i + 1]) & 0x80)) {
        size_t end = s.find('\'', i + 1);
        if (end != std::string_view::npos && end - i <= 5) {
          i = end + 1;
          continue;
        }
      }
      ++i;  // lifetime: the name is ordinary identifier text
      continue;
    }
    if (c == '{') {
      ++depth;
      on_brace(i, depth);
    } else if (c == '}') {
      --depth;
      on_brace(i, depth);
    } else if (c == ';') {
      on_semicolon(i, depth);
    }
    ++i;
  }
}

// The body of the first ``` fenced block that looks like Rust (rust/rs/no language), else nullopt.
// An unclosed fence (the output was cut off) runs to the end.
std::optional<std::string> FencedBlock(std::string_view out) {
  size_t pos = 0;
  std::optional<std::string> fallback;
  while ((pos = out.find("```", pos)) != std::string_view::npos) {
    size_t line_end = out.find('\n', pos);
    if (line_end == std::string_view::npos) return fallback;
    std::string lang(out.substr(pos + 3, line_end - pos - 3));
    while (!lang.empty() && std::isspace(static_cast<unsigned char>(lang.back()))) lang.pop_back();
    size_t close = out.find("```", line_end + 1);
    std::string body(out.substr(line_end + 1, close == std::string_view::npos
                                                  ? std::string_view::npos
                                                  : close - line_end - 1));
    if (lang == "rust" || lang == "rs") return body;
    if (lang.empty() && !fallback) fallback = body;
    if (close == std::string_view::npos) break;
    pos = close + 3;
  }
  return fallback;
}

}  // namespace

int BraceDepth(std::string_view code, int initial_depth) {
  int depth = initial_depth;
  Scan(code, initial_depth, [&](size_t, int d) { depth = d; }, [](size_t, int) {});
  return depth;
}

Extraction ExtractCode(std::string_view output, const ExtractionOptions& options) {
  Extraction result;
  std::string code;
  if (auto fenced = FencedBlock(output)) {
    code = std::move(*fenced);
    result.from_fence = true;
  } else {
    code = std::string(output);
  }
  // Stop sequences apply to raw continuations, not inside a fenced block's own text.
  if (!result.from_fence) {
    size_t cut = std::string::npos;
    for (const std::string& stop : options.stop_sequences) {
      if (stop.empty()) continue;
      size_t at = code.find(stop);
      if (at != std::string::npos && (cut == std::string::npos || at < cut)) cut = at;
    }
    if (cut != std::string::npos) {
      code.resize(cut);
      result.stopped = true;
    }
  }
  int depth = options.initial_depth;
  if (!options.function_header.empty()) {
    size_t header = code.find(options.function_header);
    if (header != std::string::npos) {
      size_t open = code.find('{', header);
      if (open != std::string::npos) {
        code = code.substr(open + 1);
        depth = 1;
      }
    }
  }
  std::optional<size_t> first_close;  // the brace that closes the open function (continuations)
  std::optional<size_t> last_safe;    // just after the last complete top-level item
  std::optional<size_t> underflow;    // a `}` with nothing open
  Scan(
      code, depth,
      [&](size_t pos, int d) {
        if (d == 0 && code[pos] == '}') {
          if (depth > 0 && !first_close) first_close = pos;
          last_safe = pos + 1;
        }
        if (d < 0 && !underflow) underflow = pos;
      },
      [&](size_t pos, int d) {
        if (d == 0) last_safe = pos + 1;
      });
  if (depth > 0 && !options.keep_closing_brace && first_close) {
    code.resize(*first_close);
  } else if (underflow) {
    code.resize(*underflow);
    result.trimmed_tail = true;
  } else if (BraceDepth(code, depth) > 0 && last_safe && !(depth > 0 && !first_close)) {
    code.resize(*last_safe);
    result.trimmed_tail = true;
  }
  result.code = std::move(code);
  return result;
}

}  // namespace temper::rusteval
