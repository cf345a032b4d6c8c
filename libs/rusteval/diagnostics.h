// rustc/clippy JSON diagnostics: tolerant parsing, host-path redaction, and the error taxonomy.
// Pure functions; thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace temper::rusteval {

// Coarse classes of a failed evaluation. Compile errors map from their codes; the rest name what
// happened after compiling, or which sandbox limit stopped it.
enum class ErrorClass {
  kNone,
  kSyntax,          // the parser rejected it (rustc gives these no code)
  kUnresolved,      // unknown name, path, import, method, field, crate
  kTypeMismatch,    // mismatched types, wrong argument count, annotations needed
  kBorrow,          // moves, borrows, lifetimes, mutability
  kTraitBound,      // unsatisfied trait bounds, missing impls
  kOtherCompile,    // any other compile error
  kTestFailure,     // compiled, and a test failed (assertion or panic)
  kTimeout,         // wall-clock or CPU limit, at compile or run time
  kResourceLimit,   // memory, processes, file size or output limit
  kNoCode,          // nothing to compile was found in the model output
};
std::string_view ErrorClassName(ErrorClass c);
ErrorClass ErrorClassFromName(std::string_view name);  // kNone for unknown names

struct Diagnostic {
  std::string level;    // "error", "warning", ...
  std::string code;     // "E0308", "clippy::needless_return", "unused_imports", or ""
  std::string message;
  std::string rendered;  // rustc's human rendering, paths redacted
  std::string file;      // primary span's file, paths redacted
  int line = 0;
  int column = 0;
};

// Parses rustc's `--error-format=json` output: one JSON object per line. Lines that are not JSON
// diagnostics (noise, a truncated last line) are skipped, never fatal. Summary lines ("aborting
// due to ...", "N warnings emitted", "For more information ...") are dropped.
std::vector<Diagnostic> ParseDiagnostics(std::string_view json_lines);

// Rewrites paths under any of `prefixes` as `<label>/rest`; `prefixes` maps a path prefix to a
// label ("" drops the prefix). Longest prefixes win. Also drops rustc's `/rustc/<hash>/` prefix.
std::string RedactPaths(std::string_view text, const std::map<std::string, std::string>& prefixes);
void RedactPaths(Diagnostic& d, const std::map<std::string, std::string>& prefixes);

// The class of one error diagnostic, from its code (and, for code-less errors, its message).
ErrorClass ClassifyError(const Diagnostic& d);

// The class of a failed compile: the class of its first error; kNone if there is no error.
ErrorClass ClassifyCompile(const std::vector<Diagnostic>& diagnostics);

// Lint counts by name: every warning with a code (clippy::*, rustc lints such as unused_imports).
std::map<std::string, int> CountLints(const std::vector<Diagnostic>& diagnostics);

}  // namespace temper::rusteval
