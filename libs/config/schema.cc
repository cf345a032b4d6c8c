#include "libs/config/schema.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/common/strings.h"
#include "yaml-cpp/yaml.h"

namespace temper::config_internal {
namespace {

using google::protobuf::Reflection;

constexpr int kDefaultMaxLength = 4096;

bool IsBoolText(std::string_view t) {
  return t == "true" || t == "True" || t == "TRUE" || t == "false" || t == "False" ||
         t == "FALSE";
}

// Parses a finite double from YAML plain scalar text; false when it is not one.
bool ParseDouble(std::string_view t, double* out) {
  if (!t.empty() && t.front() == '+') t.remove_prefix(1);
  if (t.empty()) return false;
  const char* end = t.data() + t.size();
  auto [p, ec] = std::from_chars(t.data(), end, *out, std::chars_format::general);
  return ec == std::errc() && p == end;
}

std::string FormatDouble(double v) {
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return ec == std::errc() ? std::string(buf, p) : absl::StrCat(v);
}

std::string FormatBound(const FieldDescriptor* f, double v) {
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE ||
      f->cpp_type() == FieldDescriptor::CPPTYPE_FLOAT) {
    return FormatDouble(v);
  }
  return absl::StrCat(static_cast<int64_t>(v));
}

bool IsFloating(const FieldDescriptor* f) {
  return f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE ||
         f->cpp_type() == FieldDescriptor::CPPTYPE_FLOAT;
}

// The numeric value of a field element as a double, and its display text.
double NumericValue(const Message& msg, const FieldDescriptor* f, int index, std::string* text) {
  const Reflection* r = msg.GetReflection();
  bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: {
      int32_t v = rep ? r->GetRepeatedInt32(msg, f, index) : r->GetInt32(msg, f);
      *text = absl::StrCat(v);
      return v;
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t v = rep ? r->GetRepeatedInt64(msg, f, index) : r->GetInt64(msg, f);
      *text = absl::StrCat(v);
      return static_cast<double>(v);
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      double v = rep ? r->GetRepeatedDouble(msg, f, index) : r->GetDouble(msg, f);
      *text = FormatDouble(v);
      return v;
    }
    default:
      *text = "";
      return 0;
  }
}

}  // namespace

const v1::FieldSpec& SpecOf(const FieldDescriptor* field) {
  return field->options().GetExtension(v1::field);
}

std::string ScalarTypeName(const FieldDescriptor* f) {
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      return "integer";
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT:
      return "number";
    case FieldDescriptor::CPPTYPE_BOOL:
      return "boolean";
    case FieldDescriptor::CPPTYPE_STRING:
      return "string";
    default:
      return "map";
  }
}

std::string Quote(std::string_view s) {
  if (!IsValidUtf8(s)) return "(text that is not valid UTF-8)";
  constexpr size_t kMaxShown = 80;
  std::string out = "`";
  size_t shown = 0;
  for (unsigned char c : s) {
    if (shown >= kMaxShown && (c & 0xC0) != 0x80) {
      out += "...";
      break;
    }
    if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
    ++shown;
  }
  out += "`";
  return out;
}

std::string SetScalarFromText(Message* msg, const FieldDescriptor* f, std::string_view text,
                              bool quoted) {
  const Reflection* r = msg->GetReflection();
  const bool rep = f->is_repeated();
  const std::string type = ScalarTypeName(f);
  auto wrong = [&](std::string_view got) {
    return absl::StrCat("expected ", type == "integer" ? "an " : "a ", type, ", got ", Sv(got));
  };
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64: {
      if (quoted) return wrong(absl::StrCat("the string ", Quote(text)));
      if (IsBoolText(text)) return wrong(absl::StrCat("the boolean ", Quote(text)));
      std::string_view t = text;
      if (!t.empty() && t.front() == '+') t.remove_prefix(1);
      int64_t v = 0;
      const char* end = t.data() + t.size();
      auto [p, ec] = std::from_chars(t.data(), end, v);
      if (t.empty() || p != end || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
        double d;
        if (ParseDouble(text, &d)) return wrong(absl::StrCat("the fraction ", Quote(text)));
        return wrong(Quote(text));
      }
      bool is32 = f->cpp_type() == FieldDescriptor::CPPTYPE_INT32;
      if (ec == std::errc::result_out_of_range ||
          (is32 && (v < std::numeric_limits<int32_t>::min() ||
                    v > std::numeric_limits<int32_t>::max()))) {
        return absl::StrCat(Quote(text), " is out of range for a ", is32 ? "32" : "64",
                            "-bit integer");
      }
      if (is32) {
        rep ? r->AddInt32(msg, f, static_cast<int32_t>(v))
            : r->SetInt32(msg, f, static_cast<int32_t>(v));
      } else {
        rep ? r->AddInt64(msg, f, v) : r->SetInt64(msg, f, v);
      }
      return "";
    }
    case FieldDescriptor::CPPTYPE_DOUBLE: {
      if (quoted) return wrong(absl::StrCat("the string ", Quote(text)));
      if (IsBoolText(text)) return wrong(absl::StrCat("the boolean ", Quote(text)));
      double d;
      if (!ParseDouble(text, &d)) {
        std::string_view t = text;
        if (t == ".inf" || t == "-.inf" || t == "+.inf" || t == ".nan" || t == ".Inf" ||
            t == ".NaN" || t == ".NAN" || t == ".INF" || t == "-.Inf" || t == "-.INF") {
          return absl::StrCat("expected a finite number, got ", Quote(text));
        }
        return wrong(Quote(text));
      }
      if (!std::isfinite(d)) return absl::StrCat("expected a finite number, got ", Quote(text));
      rep ? r->AddDouble(msg, f, d) : r->SetDouble(msg, f, d);
      return "";
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      if (quoted) return wrong(absl::StrCat("the string ", Quote(text)));
      bool v;
      if (text == "true" || text == "True" || text == "TRUE") {
        v = true;
      } else if (text == "false" || text == "False" || text == "FALSE") {
        v = false;
      } else {
        return absl::StrCat("expected a boolean (true or false), got ", Quote(text));
      }
      rep ? r->AddBool(msg, f, v) : r->SetBool(msg, f, v);
      return "";
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string s(text);
      rep ? r->AddString(msg, f, std::move(s)) : r->SetString(msg, f, std::move(s));
      return "";
    }
    default:
      return "expected a map";
  }
}

std::string CheckIdentifier(std::string_view s) {
  constexpr std::string_view kRule = "1 to 128 characters from A-Z a-z 0-9 . _ -";
  if (s.empty()) return absl::StrCat("must not be empty; use ", Sv(kRule));
  if (!IsValidUtf8(s)) return absl::StrCat("is not valid UTF-8; use ", Sv(kRule));
  if (s.size() > 128) {
    return absl::StrCat("is ", s.size(), " characters long; use ", Sv(kRule));
  }
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) {
      return absl::StrCat(Quote(s), " has the character ", Quote(std::string_view(&s[i], 1)),
                          " at offset ", i, "; use ", Sv(kRule));
    }
  }
  return "";
}

std::string RangeText(const FieldDescriptor* f) {
  const v1::FieldSpec& spec = SpecOf(f);
  if (!spec.has_min() && !spec.has_max()) return "";
  std::string lo = spec.has_min() ? FormatBound(f, spec.min()) : "";
  std::string hi = spec.has_max() ? FormatBound(f, spec.max()) : "";
  if (spec.has_min() && spec.has_max()) {
    if (!IsFloating(f) && !spec.min_exclusive() && !spec.max_exclusive()) {
      return lo == hi ? lo : absl::StrCat(lo, "..", hi);
    }
    return absl::StrCat(spec.min_exclusive() ? "(" : "[", lo, ", ", hi,
                        spec.max_exclusive() ? ")" : "]");
  }
  if (spec.has_min()) return absl::StrCat(spec.min_exclusive() ? "> " : ">= ", lo);
  return absl::StrCat(spec.max_exclusive() ? "< " : "<= ", hi);
}

std::string CheckScalar(const Message& msg, const FieldDescriptor* f, int index) {
  const v1::FieldSpec& spec = SpecOf(f);
  const Reflection* r = msg.GetReflection();
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
    std::string s = f->is_repeated() ? r->GetRepeatedString(msg, f, index) : r->GetString(msg, f);
    if (!IsValidUtf8(s)) return "is not valid UTF-8";
    if (spec.identifier()) return CheckIdentifier(s);
    size_t max_len = spec.has_max_length() ? spec.max_length() : kDefaultMaxLength;
    if (s.size() > max_len) {
      return absl::StrCat("is ", s.size(), " bytes long; the limit is ", max_len);
    }
    if (spec.choices_size() > 0) {
      std::vector<std::string> choices(spec.choices().begin(), spec.choices().end());
      for (const auto& c : choices) {
        if (c == s) return "";
      }
      std::string msg_text =
          absl::StrCat(Quote(s), " is not one of ", absl::StrJoin(choices, ", "));
      std::string guess = DidYouMean(s, choices);
      if (!guess.empty()) absl::StrAppend(&msg_text, "; did you mean `", guess, "`?");
      return msg_text;
    }
    return "";
  }
  if (!spec.has_min() && !spec.has_max()) return "";
  std::string text;
  double v = NumericValue(msg, f, index, &text);
  if (text.empty()) return "";
  bool below = spec.has_min() && (spec.min_exclusive() ? v <= spec.min() : v < spec.min());
  bool above = spec.has_max() && (spec.max_exclusive() ? v >= spec.max() : v > spec.max());
  if (below || above) {
    return absl::StrCat(Quote(text), " is out of range; expected ", RangeText(f));
  }
  return "";
}

std::vector<const FieldDescriptor*> ResolvePath(const Descriptor* root, std::string_view path) {
  std::vector<const FieldDescriptor*> chain;
  const Descriptor* d = root;
  for (absl::string_view part : absl::StrSplit(Sv(path), '.')) {
    if (d == nullptr) return {};
    const FieldDescriptor* f = d->FindFieldByName(std::string(part.data(), part.size()));
    if (f == nullptr) return {};
    chain.push_back(f);
    d = IsMessage(f) ? f->message_type() : nullptr;
  }
  return chain;
}

namespace {
void CollectPaths(const Descriptor* d, const std::string& prefix, std::vector<std::string>* out) {
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    std::string p = JoinPath(prefix, f->name());
    out->push_back(p);
    if (IsMessage(f)) CollectPaths(f->message_type(), p, out);
  }
}
}  // namespace

std::vector<std::string> AllPaths(const Descriptor* root) {
  std::vector<std::string> out;
  CollectPaths(root, "", &out);
  return out;
}

std::string UnknownKeyHint(const Descriptor* d, std::string_view key,
                           std::string_view parent_path) {
  // A name people reach for (an alias) in this message.
  for (int i = 0; i < d->field_count(); ++i) {
    for (const auto& alias : SpecOf(d->field(i)).aliases()) {
      if (alias == key) {
        return absl::StrCat("; did you mean `", JoinPath(parent_path, d->field(i)->name()), "`?");
      }
    }
  }
  std::vector<std::string> names;
  for (int i = 0; i < d->field_count(); ++i) names.push_back(d->field(i)->name());
  // A key that lives elsewhere in the schema ("r" at the top level, "lr" under model).
  const Descriptor* root = v1::RunConfig::descriptor();
  for (const std::string& p : AllPaths(root)) {
    std::vector<const FieldDescriptor*> chain = ResolvePath(root, p);
    const FieldDescriptor* f = chain.back();
    bool match = f->name() == key;
    for (const auto& alias : SpecOf(f).aliases()) match = match || alias == key;
    if (match) return absl::StrCat("; did you mean `", p, "`?");
  }
  // A dotted key written flat ("lora.r: 8") that names a real key.
  if (key.find('.') != std::string_view::npos && !ResolvePath(d, key).empty()) {
    std::string first(key.substr(0, key.find('.')));
    return absl::StrCat("; dotted keys are not expanded: nest `", Sv(key.substr(first.size() + 1)),
                        "` under `", JoinPath(parent_path, first), "`");
  }
  // A typo of a key in this message.
  std::string guess = DidYouMean(key, names);
  if (!guess.empty()) return absl::StrCat("; did you mean `", JoinPath(parent_path, guess), "`?");
  return absl::StrCat("; valid keys here: ", absl::StrJoin(names, ", "));
}

std::string CheckSweepKey(std::string_view key) {
  const Descriptor* root = v1::RunConfig::descriptor();
  std::vector<const FieldDescriptor*> chain = ResolvePath(root, key);
  if (chain.empty()) {
    std::string hint;
    std::vector<std::string> leaves;
    for (const std::string& p : AllPaths(root)) {
      if (!IsMessage(ResolvePath(root, p).back())) leaves.push_back(p);
    }
    std::string guess = DidYouMean(key, leaves);
    if (guess.empty()) {
      // "lora.rank": an alias of the last part under the same parent.
      size_t dot = key.rfind('.');
      std::string_view parent = dot == std::string_view::npos ? "" : key.substr(0, dot);
      std::string_view last = dot == std::string_view::npos ? key : key.substr(dot + 1);
      const Descriptor* d = root;
      if (!parent.empty()) {
        auto pc = ResolvePath(root, parent);
        d = !pc.empty() && IsMessage(pc.back()) ? pc.back()->message_type() : nullptr;
      }
      for (int i = 0; d != nullptr && i < d->field_count(); ++i) {
        for (const auto& alias : SpecOf(d->field(i)).aliases()) {
          if (alias == last) guess = JoinPath(parent, d->field(i)->name());
        }
      }
    }
    if (!guess.empty()) hint = absl::StrCat("; did you mean `", guess, "`?");
    return absl::StrCat(Quote(key), " is not a config key", hint);
  }
  const FieldDescriptor* f = chain.back();
  if (IsMessage(f)) {
    return absl::StrCat(Quote(key), " is a section; sweep one of its keys, such as `",
                        JoinPath(key, f->message_type()->field(0)->name()), "`");
  }
  if (key == "name" || key == "labels" || chain.front()->name() == "sweep" || IsMap(f)) {
    return absl::StrCat(Quote(key), " cannot be swept");
  }
  return "";
}

std::string ApplySweepValue(v1::RunConfig* config, std::string_view key, std::string_view value) {
  std::vector<const FieldDescriptor*> chain = ResolvePath(v1::RunConfig::descriptor(), key);
  if (chain.empty()) return CheckSweepKey(key);
  Message* msg = config;
  for (size_t i = 0; i + 1 < chain.size(); ++i) {
    msg = msg->GetReflection()->MutableMessage(msg, chain[i]);
  }
  const FieldDescriptor* f = chain.back();
  const Reflection* r = msg->GetReflection();
  if (!f->is_repeated()) {
    std::string err = SetScalarFromText(msg, f, value, /*quoted=*/false);
    if (err.empty()) err = CheckScalar(*msg, f, -1);
    return err;
  }
  // A list-valued key: the value is a YAML flow list.
  YAML::Node node;
  try {
    node = YAML::Load(std::string(value));
  } catch (const YAML::Exception& e) {
    return absl::StrCat("expected a list such as [a, b], got ", Quote(value));
  }
  if (!node.IsSequence()) return absl::StrCat("expected a list such as [a, b], got ", Quote(value));
  r->ClearField(msg, f);
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node e = node[i];
    if (!e.IsScalar()) return absl::StrCat("expected a list of ", ScalarTypeName(f), "s");
    std::string err = SetScalarFromText(msg, f, e.Scalar(), e.Tag() == "!");
    if (err.empty()) err = CheckScalar(*msg, f, static_cast<int>(i));
    if (!err.empty()) return absl::StrCat("[", i, "]: ", err);
  }
  return "";
}

std::string JoinPath(std::string_view parent, std::string_view key) {
  return parent.empty() ? std::string(key) : absl::StrCat(Sv(parent), ".", Sv(key));
}
std::string IndexPath(std::string_view parent, int index) {
  return absl::StrCat(Sv(parent), "[", index, "]");
}
std::string KeyPath(std::string_view parent, std::string_view key) {
  return absl::StrCat(Sv(parent), "[", Sv(key), "]");
}

}  // namespace temper::config_internal
