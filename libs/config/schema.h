// Internal to libs/config: reflection over RunConfig's descriptors and `(temper.v1.field)`
// options. Messages returned here are the error texts users see, shared by the YAML parser and
// the validator so both say the same thing.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "libs/config/run_config.h"
#include "google/protobuf/message.h"
#include "temper/v1/config.pb.h"
#include "temper/v1/options.pb.h"

namespace temper::config_internal {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// Debian's abseil has its own string_view type; StrCat and friends take it, not std's.
inline absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// The field's spec; the empty spec when it has none.
const v1::FieldSpec& SpecOf(const FieldDescriptor* field);

// True when the field is a map<...> field.
inline bool IsMap(const FieldDescriptor* f) { return f->is_map(); }
// True for a singular sub-message field (not a map, not repeated).
inline bool IsMessage(const FieldDescriptor* f) {
  return f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !f->is_repeated();
}
// True for a singular or repeated scalar (string, number, bool).
inline bool IsScalar(const FieldDescriptor* f) {
  return f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE;
}

// The type as users read it: "integer", "number", "boolean", "string" (element type for lists).
std::string ScalarTypeName(const FieldDescriptor* field);

// Parses YAML scalar text as the field's type and sets it (appends, for a repeated field).
// `quoted`: the text was a quoted YAML string, which only a string field accepts.
// Returns "" on success, else the error message.
std::string SetScalarFromText(Message* msg, const FieldDescriptor* field, std::string_view text,
                              bool quoted);

// Checks one scalar value against its spec (range, choices, identifier rule, length, UTF-8).
// `index` is the element for a repeated field, -1 for a singular one. "" when fine.
std::string CheckScalar(const Message& msg, const FieldDescriptor* field, int index);

// Checks a string against the identifier rule [A-Za-z0-9._-]{1,128}; "" when fine.
std::string CheckIdentifier(std::string_view s);

// `s` quoted for an error message: backticks, truncated, control bytes escaped.
std::string Quote(std::string_view s);

// The allowed range of a numeric spec as text ("1..1024", "(0, 1]", ">= 0"), or "".
std::string RangeText(const FieldDescriptor* field);

// The field chain a dotted path ("lora.r") names from `root`; empty when it names nothing.
std::vector<const FieldDescriptor*> ResolvePath(const Descriptor* root, std::string_view path);

// Every key path below `root` in field order, sub-messages before their fields.
std::vector<std::string> AllPaths(const Descriptor* root);

// A suggestion for an unknown `key` inside message `d` at `parent_path` ("" for the root):
// the message text after "unknown key", e.g. "; did you mean `lora.r`?".
std::string UnknownKeyHint(const Descriptor* d, std::string_view key, std::string_view parent_path);

// "" when `key` may be swept (a leaf path that is not name, labels or sweep.*), else the error.
std::string CheckSweepKey(std::string_view key);

// Sets the field that `key` names in `config` from a sweep value (scalar text, or a YAML flow
// list for a list-valued key) and checks it as that field would be. "" when fine.
std::string ApplySweepValue(v1::RunConfig* config, std::string_view key, std::string_view value);

// CollectConfigErrors, or with `field_level_only` only the checks of each key on its own (no
// cross-field rules, no sweep points): what is meaningful when some keys failed to parse.
std::vector<ConfigError> CollectErrors(const v1::RunConfig& config, bool field_level_only);

// Joins a path and a child key / index.
std::string JoinPath(std::string_view parent, std::string_view key);
std::string IndexPath(std::string_view parent, int index);
std::string KeyPath(std::string_view parent, std::string_view key);  // parent[key]

}  // namespace temper::config_internal
