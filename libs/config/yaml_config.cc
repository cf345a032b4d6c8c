// YAML <-> RunConfig. yaml-cpp builds the node tree (its exceptions are stopped here); the walk
// over it is driven by RunConfig's descriptors, and semantic checks are CollectErrors's, with
// each error placed at the line of the key or value its path names.
#include <algorithm>
#include <charconv>
#include <climits>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/common/strings.h"
#include "libs/config/run_config.h"
#include "libs/config/schema.h"
#include "yaml-cpp/yaml.h"

namespace temper {
namespace {

using config_internal::Descriptor;
using config_internal::FieldDescriptor;
using config_internal::IndexPath;
using config_internal::IsMap;
using config_internal::IsMessage;
using config_internal::JoinPath;
using config_internal::KeyPath;
using config_internal::Message;
using config_internal::Quote;
using config_internal::ScalarTypeName;
using config_internal::SetScalarFromText;
using config_internal::SpecOf;
using google::protobuf::Reflection;

bool IsQuoted(const YAML::Node& n) {
  return n.Tag() == "!" || n.Tag() == "tag:yaml.org,2002:str";
}

std::string Kind(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null: return "null";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Scalar: return Quote(n.Scalar());
    default: return "nothing";
  }
}

std::string Expected(const FieldDescriptor* f) {
  std::string t = ScalarTypeName(f);
  return absl::StrCat("expected ", t == "integer" ? "an " : "a ", t);
}

// The parent of a path: "a.b[2]" -> "a.b", "a.b" -> "a", "a" -> "".
std::string ParentPath(std::string_view path) {
  if (path.empty()) return "";
  if (path.back() == ']') {
    size_t open = path.rfind('[');
    return open == std::string_view::npos ? "" : std::string(path.substr(0, open));
  }
  int depth = 0;
  for (size_t i = path.size(); i-- > 0;) {
    if (path[i] == ']') ++depth;
    if (path[i] == '[') --depth;
    if (path[i] == '.' && depth == 0) return std::string(path.substr(0, i));
  }
  return "";
}

// Offset of the first byte that does not start a well-formed UTF-8 sequence, or npos.
size_t FirstInvalidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                                : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || i + len > s.size() || !IsValidUtf8(s.substr(i, len))) return i;
    i += len;
  }
  return std::string_view::npos;
}

class YamlReader {
 public:
  explicit YamlReader(std::vector<ConfigError>* errors) : errors_(errors) {}

  void ReadMessage(const YAML::Node& node, Message* m, const std::string& path) {
    if (!node.IsMap()) {
      Error(node.Mark(), path, absl::StrCat("expected a map of keys, got ", Kind(node)));
      return;
    }
    const Descriptor* d = m->GetDescriptor();
    std::map<std::string, int> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;  // a copy: it-> yields a temporary
      const YAML::Node value = it->second;
      if (!key.IsScalar()) {
        Error(key.Mark(), path, absl::StrCat("keys must be strings, got ", Kind(key)));
        continue;
      }
      const std::string& k = key.Scalar();
      std::string p = JoinPath(path, k);
      if (!Unique(&seen, k, key.Mark(), p)) continue;
      const FieldDescriptor* f = d->FindFieldByName(k);
      if (f == nullptr) {
        Error(key.Mark(), p, absl::StrCat("unknown key", config_internal::UnknownKeyHint(d, k, path)));
        continue;
      }
      marks_[p] = {key.Mark(), value.Mark()};
      ReadField(value, key.Mark(), m, f, p);
    }
  }

  // Where the error at `path` points: its value, else the key of its nearest ancestor.
  YAML::Mark Locate(const std::string& path) const {
    if (auto it = marks_.find(path); it != marks_.end()) {
      return it->second.value.is_null() ? it->second.key : it->second.value;
    }
    for (std::string p = ParentPath(path); !p.empty(); p = ParentPath(p)) {
      if (auto it = marks_.find(p); it != marks_.end()) return it->second.key;
    }
    return root_;
  }

  // True when a parse error was reported at or under `path` (its later checks would mislead).
  bool Poisoned(const std::string& path) const {
    for (std::string p = path; !p.empty(); p = ParentPath(p)) {
      if (poisoned_.count(p) > 0) return true;
    }
    return false;
  }

  // Rewrites list indexes in `s` from positions among the elements that parsed to positions in
  // the YAML (elements that failed to parse are not in the message).
  void RemapIndexes(std::string* s) const {
    for (const auto& [list, kept] : kept_) {
      std::string prefix = list + "[";
      for (size_t at = s->find(prefix); at != std::string::npos; at = s->find(prefix, at + 1)) {
        size_t digits = at + prefix.size();
        size_t close = s->find(']', digits);
        if (close == std::string::npos) break;
        std::string_view n(s->data() + digits, close - digits);
        int index = 0;
        auto [ptr, ec] = std::from_chars(n.data(), n.data() + n.size(), index);
        if (ec != std::errc() || ptr != n.data() + n.size() || index < 0 ||
            index >= static_cast<int>(kept.size())) {
          continue;
        }
        s->replace(digits, close - digits, std::to_string(kept[index]));
      }
    }
  }

  void set_root(const YAML::Mark& m) { root_ = m; }
  bool failed() const { return failed_; }

  void Error(const YAML::Mark& mark, std::string path, std::string message) {
    ConfigError e;
    e.path = path;
    if (!mark.is_null()) {
      e.line = mark.line + 1;
      e.column = mark.column + 1;
    }
    e.message = std::move(message);
    errors_->push_back(std::move(e));
    poisoned_.insert(std::move(path));
    failed_ = true;
  }

 private:
  struct Marks {
    YAML::Mark key;
    YAML::Mark value;
  };

  bool Unique(std::map<std::string, int>* seen, const std::string& k, const YAML::Mark& mark,
              const std::string& path) {
    auto [it, fresh] = seen->emplace(k, mark.line + 1);
    if (!fresh) Error(mark, path, absl::StrCat("duplicate key; first given on line ", it->second));
    return fresh;
  }

  void ReadField(const YAML::Node& v, const YAML::Mark& key_mark, Message* m,
                 const FieldDescriptor* f, const std::string& p) {
    const YAML::Mark mark = v.Mark().is_null() ? key_mark : v.Mark();
    if (v.IsNull()) {
      Error(key_mark, p, "has no value; give one or remove the key");
      return;
    }
    const Reflection* r = m->GetReflection();
    if (IsMap(f)) {
      if (!v.IsMap()) {
        Error(mark, p, absl::StrCat("expected a map, got ", Kind(v)));
        return;
      }
      if (f->message_type()->map_value()->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        ReadGrid(v, static_cast<v1::SweepConfig*>(m), p);
      } else {
        ReadStringMap(v, m, f, p);
      }
      return;
    }
    if (IsMessage(f)) {
      if (!v.IsMap()) {
        Error(mark, p, absl::StrCat("expected a map of keys, got ", Kind(v)));
        return;
      }
      ReadMessage(v, r->MutableMessage(m, f), p);
      return;
    }
    if (f->is_repeated()) {
      if (!v.IsSequence()) {
        Error(mark, p, absl::StrCat("expected a list of ", ScalarTypeName(f), "s, got ", Kind(v)));
        return;
      }
      const v1::FieldSpec& spec = SpecOf(f);
      if (v.size() == 0 && spec.has_default_()) {
        Error(mark, p, absl::StrCat("is an empty list; remove the key for the default ",
                                    spec.default_()));
        return;
      }
      std::vector<int> kept;
      for (size_t i = 0; i < v.size(); ++i) {
        const YAML::Node e = v[i];
        std::string ep = IndexPath(p, static_cast<int>(i));
        marks_[ep] = {e.Mark(), e.Mark()};
        std::string err = e.IsScalar()
                              ? SetScalarFromText(m, f, e.Scalar(), IsQuoted(e))
                              : absl::StrCat(Expected(f), ", got ", Kind(e));
        if (!err.empty()) {
          Error(e.Mark(), ep, err);
        } else {
          kept.push_back(static_cast<int>(i));
        }
      }
      if (kept.size() != v.size()) kept_[p] = std::move(kept);
      return;
    }
    if (!v.IsScalar()) {
      Error(mark, p, absl::StrCat(Expected(f), ", got ", Kind(v)));
      return;
    }
    std::string err = SetScalarFromText(m, f, v.Scalar(), IsQuoted(v));
    if (!err.empty()) Error(mark, p, err);
  }

  void ReadStringMap(const YAML::Node& v, Message* m, const FieldDescriptor* f,
                     const std::string& p) {
    std::map<std::string, int> seen;
    const Reflection* r = m->GetReflection();
    for (auto it = v.begin(); it != v.end(); ++it) {
      const YAML::Node key = it->first;  // a copy: it-> yields a temporary
      const YAML::Node value = it->second;
      if (!key.IsScalar()) {
        Error(key.Mark(), p, absl::StrCat("keys must be strings, got ", Kind(key)));
        continue;
      }
      std::string kp = KeyPath(p, key.Scalar());
      if (!Unique(&seen, key.Scalar(), key.Mark(), kp)) continue;
      marks_[kp] = {key.Mark(), value.Mark()};
      if (!value.IsScalar()) {
        Error(value.Mark().is_null() ? key.Mark() : value.Mark(), kp,
              absl::StrCat("expected a string, got ", Kind(value)));
        continue;
      }
      Message* entry = r->AddMessage(m, f);
      const Reflection* er = entry->GetReflection();
      er->SetString(entry, entry->GetDescriptor()->map_key(), key.Scalar());
      er->SetString(entry, entry->GetDescriptor()->map_value(), value.Scalar());
    }
  }

  void ReadGrid(const YAML::Node& v, v1::SweepConfig* sweep, const std::string& p) {
    std::map<std::string, int> seen;
    for (auto it = v.begin(); it != v.end(); ++it) {
      const YAML::Node key = it->first;  // a copy: it-> yields a temporary
      const YAML::Node value = it->second;
      if (!key.IsScalar()) {
        Error(key.Mark(), p, absl::StrCat("keys must be config paths, got ", Kind(key)));
        continue;
      }
      const std::string& k = key.Scalar();
      std::string kp = KeyPath(p, k);
      if (!Unique(&seen, k, key.Mark(), kp)) continue;
      marks_[kp] = {key.Mark(), key.Mark()};
      v1::SweepValues& values = (*sweep->mutable_grid())[k];
      if (!config_internal::CheckSweepKey(k).empty()) continue;  // reported by validation
      const YAML::Mark mark = value.Mark().is_null() ? key.Mark() : value.Mark();
      if (!value.IsSequence()) {
        Error(mark, kp, absl::StrCat("expected a list of values to try, got ", Kind(value)));
        continue;
      }
      std::vector<const FieldDescriptor*> chain =
          config_internal::ResolvePath(v1::RunConfig::descriptor(), k);
      const FieldDescriptor* f = chain.back();
      std::vector<int> kept;
      for (size_t i = 0; i < value.size(); ++i) {
        const YAML::Node e = value[i];
        std::string ep = IndexPath(kp, static_cast<int>(i));
        marks_[ep] = {e.Mark(), e.Mark()};
        v1::RunConfig scratch;
        Message* target = &scratch;
        for (size_t c = 0; c + 1 < chain.size(); ++c) {
          target = target->GetReflection()->MutableMessage(target, chain[c]);
        }
        std::string err;
        std::string text;
        if (f->is_repeated()) {
          if (!e.IsSequence()) {
            err = absl::StrCat("expected a list of ", ScalarTypeName(f), "s, got ", Kind(e));
          } else {
            YAML::Emitter out;
            out << YAML::Flow << YAML::BeginSeq;
            for (size_t j = 0; j < e.size() && err.empty(); ++j) {
              err = e[j].IsScalar() ? SetScalarFromText(target, f, e[j].Scalar(), IsQuoted(e[j]))
                                    : absl::StrCat(Expected(f), ", got ", Kind(e[j]));
              if (!err.empty()) err = absl::StrCat("[", j, "]: ", err);
              if (e[j].IsScalar()) out << e[j].Scalar();
            }
            out << YAML::EndSeq;
            text = out.c_str();
          }
        } else if (!e.IsScalar()) {
          err = absl::StrCat(Expected(f), ", got ", Kind(e));
        } else {
          err = SetScalarFromText(target, f, e.Scalar(), IsQuoted(e));
          text = e.Scalar();
        }
        if (!err.empty()) {
          Error(e.Mark().is_null() ? mark : e.Mark(), ep, err);
          continue;
        }
        kept.push_back(static_cast<int>(i));
        values.add_values(std::move(text));
      }
      if (kept.size() != value.size()) kept_[kp] = std::move(kept);
    }
  }

  std::vector<ConfigError>* errors_;
  std::map<std::string, Marks> marks_;
  std::set<std::string> poisoned_;
  std::map<std::string, std::vector<int>> kept_;  // list path -> YAML index of each kept element
  YAML::Mark root_ = YAML::Mark::null_mark();
  bool failed_ = false;
};

// --- Emitting ------------------------------------------------------------------------------

std::string FormatDouble(double v) {
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, p);
}

void EmitScalar(YAML::Emitter& out, const Message& m, const FieldDescriptor* f, int index) {
  const Reflection* r = m.GetReflection();
  const bool rep = index >= 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      out << YAML::DoubleQuoted
          << (rep ? r->GetRepeatedString(m, f, index) : r->GetString(m, f));
      break;
    case FieldDescriptor::CPPTYPE_INT32:
      out << absl::StrCat(rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f));
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      out << absl::StrCat(rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f));
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      out << FormatDouble(rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f));
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      out << ((rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f)) ? "true" : "false");
      break;
    default:
      break;
  }
}

void EmitMessage(YAML::Emitter& out, const Message& m) {
  const Reflection* r = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  out << YAML::BeginMap;
  for (const FieldDescriptor* f : fields) {
    out << YAML::Key << f->name() << YAML::Value;
    if (IsMap(f)) {
      std::vector<std::pair<std::string, const Message*>> entries;
      for (int i = 0; i < r->FieldSize(m, f); ++i) {
        const Message& e = r->GetRepeatedMessage(m, f, i);
        entries.emplace_back(e.GetReflection()->GetString(e, e.GetDescriptor()->map_key()), &e);
      }
      std::sort(entries.begin(), entries.end());
      out << YAML::BeginMap;
      for (const auto& [key, e] : entries) {
        out << YAML::Key << YAML::DoubleQuoted << key << YAML::Value;
        const FieldDescriptor* vf = e->GetDescriptor()->map_value();
        if (vf->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
          EmitScalar(out, *e, vf, -1);
          continue;
        }
        // A sweep grid entry: the values in the form the YAML reader takes.
        const auto& values = static_cast<const v1::SweepValues&>(e->GetReflection()->GetMessage(*e, vf));
        auto chain = config_internal::ResolvePath(v1::RunConfig::descriptor(), key);
        const FieldDescriptor* target = chain.empty() ? nullptr : chain.back();
        out << YAML::Flow << YAML::BeginSeq;
        for (const std::string& v : values.values()) {
          if (target != nullptr && target->is_repeated()) {
            try {
              out << YAML::Load(v);
            } catch (const YAML::Exception&) {
              out << YAML::DoubleQuoted << v;
            }
          } else if (target != nullptr &&
                     target->cpp_type() == FieldDescriptor::CPPTYPE_STRING) {
            out << YAML::DoubleQuoted << v;
          } else {
            out << v;
          }
        }
        out << YAML::EndSeq;
      }
      out << YAML::EndMap;
    } else if (IsMessage(f)) {
      EmitMessage(out, r->GetMessage(m, f));
    } else if (f->is_repeated()) {
      out << YAML::Flow << YAML::BeginSeq;
      for (int i = 0; i < r->FieldSize(m, f); ++i) EmitScalar(out, m, f, i);
      out << YAML::EndSeq;
    } else {
      EmitScalar(out, m, f, -1);
    }
  }
  out << YAML::EndMap;
}

}  // namespace

absl::StatusOr<v1::RunConfig> ParseRunConfigYaml(std::string_view yaml, std::string_view file_name,
                                                 std::vector<ConfigError>* errors_out) {
  std::vector<ConfigError> errors;
  YamlReader reader(&errors);
  v1::RunConfig config;
  auto whole = [&](int line, int column, std::string message) {
    ConfigError e;
    e.line = line;
    e.column = column;
    e.message = std::move(message);
    errors.push_back(std::move(e));
  };
  if (yaml.size() > kMaxConfigBytes) {
    whole(0, 0, absl::StrCat("the file is ", yaml.size(), " bytes; the limit is ",
                             kMaxConfigBytes, " (1 MiB)"));
  } else if (size_t bad = FirstInvalidUtf8(yaml); bad != std::string_view::npos) {
    std::string_view before = yaml.substr(0, bad);
    int line = static_cast<int>(std::count(before.begin(), before.end(), '\n')) + 1;
    size_t nl = before.rfind('\n');
    int column = static_cast<int>(nl == std::string_view::npos ? bad + 1 : bad - nl);
    whole(line, column, absl::StrCat("invalid UTF-8 (byte offset ", bad, ")"));
  } else if (size_t ctl = yaml.find_first_of(std::string_view(
                 "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15"
                 "\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f", 31));
             ctl != std::string_view::npos) {
    std::string_view before = yaml.substr(0, ctl);
    int line = static_cast<int>(std::count(before.begin(), before.end(), '\n')) + 1;
    size_t nl = before.rfind('\n');
    int column = static_cast<int>(nl == std::string_view::npos ? ctl + 1 : ctl - nl);
    char buf[8];
    std::snprintf(buf, sizeof(buf), "%02X", static_cast<unsigned char>(yaml[ctl]));
    whole(line, column, absl::StrCat("control character 0x", buf, " is not allowed in YAML"));
  } else {
    try {
      std::vector<YAML::Node> docs = YAML::LoadAll(std::string(yaml));
      if (docs.empty() || (docs.size() == 1 && docs[0].IsNull())) {
        whole(1, 1, "the config is empty; it needs at least `name` and `model.path`");
      } else if (docs.size() > 1) {
        YAML::Mark m = docs[1].Mark();
        whole(m.is_null() ? 0 : m.line + 1, m.is_null() ? 0 : m.column + 1,
              absl::StrCat("expected one YAML document, found ", docs.size()));
      } else {
        reader.set_root(docs[0].Mark());
        reader.ReadMessage(docs[0], &config, "");
        if (!reader.failed() || docs[0].IsMap()) {
          for (ConfigError& e : config_internal::CollectErrors(config, reader.failed())) {
            reader.RemapIndexes(&e.path);
            reader.RemapIndexes(&e.message);
            if (reader.failed() && reader.Poisoned(e.path)) continue;
            YAML::Mark m = reader.Locate(e.path);
            if (!m.is_null()) {
              e.line = m.line + 1;
              e.column = m.column + 1;
            }
            errors.push_back(std::move(e));
          }
        }
      }
    } catch (const YAML::ParserException& e) {
      whole(e.mark.is_null() ? 0 : e.mark.line + 1, e.mark.is_null() ? 0 : e.mark.column + 1,
            absl::StrCat("YAML syntax error: ", e.msg));
    } catch (const YAML::Exception& e) {
      whole(e.mark.is_null() ? 0 : e.mark.line + 1, e.mark.is_null() ? 0 : e.mark.column + 1,
            absl::StrCat("YAML error: ", e.msg));
    }
  }
  std::stable_sort(errors.begin(), errors.end(), [](const ConfigError& a, const ConfigError& b) {
    int la = a.line == 0 ? INT_MAX : a.line;
    int lb = b.line == 0 ? INT_MAX : b.line;
    return la != lb ? la < lb : a.column < b.column;
  });
  if (errors_out != nullptr) *errors_out = errors;
  if (!errors.empty()) {
    std::string name = file_name.empty() ? "<config>" : std::string(file_name);
    std::string text = absl::StrCat(name, ": invalid run config (", errors.size(),
                                     errors.size() == 1 ? " error)" : " errors)");
    for (const auto& e : errors) absl::StrAppend(&text, "\n", e.ToString(name));
    return absl::InvalidArgumentError(text);
  }
  ApplyDefaults(&config);
  return config;
}

std::string RunConfigToYaml(const v1::RunConfig& config) {
  YAML::Emitter out;
  EmitMessage(out, config);
  return std::string(out.c_str()) + "\n";
}

}  // namespace temper
