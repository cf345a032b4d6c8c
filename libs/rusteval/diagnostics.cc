#include "libs/rusteval/diagnostics.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "nlohmann/json.hpp"

namespace temper::rusteval {
namespace {

using nlohmann::json;

constexpr std::array<std::pair<ErrorClass, std::string_view>, 11> kClassNames = {{
    {ErrorClass::kNone, "none"},
    {ErrorClass::kSyntax, "syntax"},
    {ErrorClass::kUnresolved, "unresolved"},
    {ErrorClass::kTypeMismatch, "type_mismatch"},
    {ErrorClass::kBorrow, "borrow"},
    {ErrorClass::kTraitBound, "trait_bound"},
    {ErrorClass::kOtherCompile, "other_compile"},
    {ErrorClass::kTestFailure, "test_failure"},
    {ErrorClass::kTimeout, "timeout"},
    {ErrorClass::kResourceLimit, "resource_limit"},
    {ErrorClass::kNoCode, "no_code"},
}};

const std::map<std::string_view, ErrorClass>& CodeClasses() {
  static const auto* const kMap = [] {
    auto* m = new std::map<std::string_view, ErrorClass>;
    for (const char* c : {"E0405", "E0407", "E0412", "E0422", "E0423", "E0424", "E0425", "E0426",
                          "E0432", "E0433", "E0434", "E0437", "E0438", "E0463", "E0531", "E0532",
                          "E0560", "E0574", "E0577", "E0583", "E0599", "E0609", "E0610", "E0614",
                          "E0616", "E0624", "E0603", "E0576"}) {
      (*m)[c] = ErrorClass::kUnresolved;
    }
    for (const char* c : {"E0308", "E0061", "E0060", "E0057", "E0063", "E0069", "E0070", "E0071",
                          "E0107", "E0282", "E0283", "E0284", "E0317", "E0604", "E0605", "E0606",
                          "E0607", "E0608", "E0600", "E0618", "E0620", "E0631", "E0689", "E0026",
                          "E0027", "E0029", "E0023", "E0004", "E0005", "E0054", "E0529", "E0559"}) {
      (*m)[c] = ErrorClass::kTypeMismatch;
    }
    for (const char* c : {"E0106", "E0373", "E0381", "E0382", "E0383", "E0384", "E0495", "E0499",
                          "E0500", "E0501", "E0502", "E0503", "E0504", "E0505", "E0506", "E0507",
                          "E0508", "E0509", "E0510", "E0515", "E0516", "E0521", "E0594", "E0596",
                          "E0597", "E0621", "E0623", "E0626", "E0700", "E0712", "E0713", "E0716",
                          "E0759", "E0261", "E0262", "E0263", "E0478", "E0491", "E0581", "E0582",
                          "E0637", "E0726"}) {
      (*m)[c] = ErrorClass::kBorrow;
    }
    for (const char* c : {"E0277", "E0369", "E0368", "E0038", "E0046", "E0049", "E0050", "E0053",
                          "E0117", "E0119", "E0120", "E0184", "E0185", "E0186", "E0191", "E0195",
                          "E0200", "E0201", "E0204", "E0207", "E0210", "E0220", "E0221", "E0223",
                          "E0225", "E0271", "E0275", "E0276", "E0323", "E0324", "E0325", "E0390",
                          "E0404", "E0525"}) {
      (*m)[c] = ErrorClass::kTraitBound;
    }
    return m;
  }();
  return *kMap;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool IsSummary(const std::string& message) {
  return StartsWith(message, "aborting due to") || message.find("warnings emitted") != std::string::npos ||
         message.find("warning emitted") != std::string::npos ||
         StartsWith(message, "For more information about") ||
         StartsWith(message, "Some errors have detailed explanations");
}

std::string StringOr(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::string_view ErrorClassName(ErrorClass c) {
  for (const auto& [k, name] : kClassNames) {
    if (k == c) return name;
  }
  return "unknown";
}

ErrorClass ErrorClassFromName(std::string_view name) {
  for (const auto& [k, n] : kClassNames) {
    if (n == name) return k;
  }
  return ErrorClass::kNone;
}

std::vector<Diagnostic> ParseDiagnostics(std::string_view json_lines) {
  std::vector<Diagnostic> out;
  size_t pos = 0;
  while (pos < json_lines.size()) {
    size_t end = json_lines.find('\n', pos);
    if (end == std::string_view::npos) end = json_lines.size();
    std::string_view line = json_lines.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line.front() != '{') continue;
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("message") || !j["message"].is_string()) continue;
    if (j.contains("$message_type") && j["$message_type"] != "diagnostic") continue;
    Diagnostic d;
    d.level = StringOr(j, "level");
    d.message = StringOr(j, "message");
    if (IsSummary(d.message)) continue;
    d.rendered = StringOr(j, "rendered");
    if (auto code = j.find("code"); code != j.end() && code->is_object()) d.code = StringOr(*code, "code");
    if (auto spans = j.find("spans"); spans != j.end() && spans->is_array()) {
      for (const json& span : *spans) {
        if (!span.is_object() || !span.value("is_primary", false)) continue;
        d.file = StringOr(span, "file_name");
        if (span.contains("line_start") && span["line_start"].is_number_integer()) {
          d.line = span["line_start"].get<int>();
        }
        if (span.contains("column_start") && span["column_start"].is_number_integer()) {
          d.column = span["column_start"].get<int>();
        }
        break;
      }
    }
    out.push_back(std::move(d));
  }
  return out;
}

std::string RedactPaths(std::string_view text, const std::map<std::string, std::string>& prefixes) {
  std::vector<std::pair<std::string, std::string>> ordered(prefixes.begin(), prefixes.end());
  std::sort(ordered.begin(), ordered.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    bool replaced = false;
    for (const auto& [prefix, label] : ordered) {
      if (!prefix.empty() && text.substr(i, prefix.size()) == prefix) {
        out += label.empty() ? "" : label + "/";
        i += prefix.size();
        while (i < text.size() && text[i] == '/') ++i;
        replaced = true;
        break;
      }
    }
    if (replaced) continue;
    // rustc's remapped standard-library paths: /rustc/<40 hex>/...
    if (text.substr(i, 7) == "/rustc/") {
      size_t j = i + 7;
      while (j < text.size() && std::isxdigit(static_cast<unsigned char>(text[j]))) ++j;
      if (j - (i + 7) >= 7 && j < text.size() && text[j] == '/') {
        out += "<rustc>/";
        i = j + 1;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

void RedactPaths(Diagnostic& d, const std::map<std::string, std::string>& prefixes) {
  d.message = RedactPaths(d.message, prefixes);
  d.rendered = RedactPaths(d.rendered, prefixes);
  d.file = RedactPaths(d.file, prefixes);
}

ErrorClass ClassifyError(const Diagnostic& d) {
  if (!d.code.empty()) {
    auto it = CodeClasses().find(d.code);
    return it == CodeClasses().end() ? ErrorClass::kOtherCompile : it->second;
  }
  // Code-less errors: mostly the parser's. Names the resolver could not find come without a code
  // for macros.
  const std::string& m = d.message;
  if (StartsWith(m, "cannot find macro") || StartsWith(m, "cannot find attribute") ||
      StartsWith(m, "cannot find derive macro")) {
    return ErrorClass::kUnresolved;
  }
  for (std::string_view p : {"expected ", "unexpected ", "this file contains an unclosed delimiter",
                             "mismatched closing delimiter", "unterminated ", "unknown start of token",
                             "missing ", "incorrect ", "unmatched ", "found a documentation comment",
                             "expected item", "invalid ", "unknown character", "prefix `",
                             "non-item in item list", "macro expansion ignores", "leading `+`",
                             "unclosed delimiter", "Rust has no"}) {
    if (StartsWith(m, p)) return ErrorClass::kSyntax;
  }
  return ErrorClass::kOtherCompile;
}

ErrorClass ClassifyCompile(const std::vector<Diagnostic>& diagnostics) {
  for (const Diagnostic& d : diagnostics) {
    if (d.level == "error") return ClassifyError(d);
  }
  return ErrorClass::kNone;
}

std::map<std::string, int> CountLints(const std::vector<Diagnostic>& diagnostics) {
  std::map<std::string, int> counts;
  for (const Diagnostic& d : diagnostics) {
    if (d.level == "warning" && !d.code.empty()) ++counts[d.code];
  }
  return counts;
}

}  // namespace temper::rusteval
