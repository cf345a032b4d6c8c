// Defaults, validation and sweep expansion, driven by the `(temper.v1.field)` options.
#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/common/strings.h"
#include "libs/config/run_config.h"
#include "libs/config/schema.h"
#include "yaml-cpp/yaml.h"

namespace temper {
namespace {

using config_internal::ApplySweepValue;
using config_internal::CheckScalar;
using config_internal::CheckSweepKey;
using config_internal::CheckIdentifier;
using config_internal::Descriptor;
using config_internal::FieldDescriptor;
using config_internal::IndexPath;
using config_internal::IsMap;
using config_internal::IsMessage;
using config_internal::JoinPath;
using config_internal::KeyPath;
using config_internal::Message;
using config_internal::Quote;
using config_internal::SetScalarFromText;
using config_internal::SpecOf;
using google::protobuf::Reflection;

constexpr int kDefaultMaxItems = 10000;
constexpr size_t kMaxPointErrors = 20;
constexpr std::string_view kMissing = "missing required key";

bool HasDefaults(const Descriptor* d) {
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    // Only defaults that ApplyDefaults sets (a zero default is already there) count.
    bool applies = SpecOf(f).has_default_() && (f->is_repeated() || f->has_presence());
    if (IsMessage(f) ? HasDefaults(f->message_type()) : applies) return true;
  }
  return false;
}

void ApplyDefaultsTo(Message* m) {
  const Reflection* r = m->GetReflection();
  const Descriptor* d = m->GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const v1::FieldSpec& spec = SpecOf(f);
    if (IsMap(f)) continue;
    if (IsMessage(f)) {
      if (r->HasField(*m, f) || HasDefaults(f->message_type())) {
        ApplyDefaultsTo(r->MutableMessage(m, f));
      }
      continue;
    }
    if (!spec.has_default_()) continue;
    if (f->is_repeated()) {
      if (r->FieldSize(*m, f) > 0) continue;
      YAML::Node list = YAML::Load(spec.default_());
      for (size_t k = 0; k < list.size(); ++k) {
        SetScalarFromText(m, f, list[k].Scalar(), false);
      }
    } else if (f->has_presence() && !r->HasField(*m, f)) {
      SetScalarFromText(m, f, spec.default_(), false);
    }
  }
}

std::string ElementText(const Message& m, const FieldDescriptor* f, int i) {
  const Reflection* r = m.GetReflection();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING: return r->GetRepeatedString(m, f, i);
    case FieldDescriptor::CPPTYPE_INT32: return absl::StrCat(r->GetRepeatedInt32(m, f, i));
    case FieldDescriptor::CPPTYPE_INT64: return absl::StrCat(r->GetRepeatedInt64(m, f, i));
    case FieldDescriptor::CPPTYPE_DOUBLE: return absl::StrCat(r->GetRepeatedDouble(m, f, i));
    case FieldDescriptor::CPPTYPE_BOOL: return r->GetRepeatedBool(m, f, i) ? "true" : "false";
    default: return "";
  }
}

void Add(std::vector<ConfigError>* errors, std::string path, std::string message) {
  ConfigError e;
  e.path = std::move(path);
  e.message = std::move(message);
  errors->push_back(std::move(e));
}

void CheckSweepGrid(const Message& entry_owner, const FieldDescriptor* f, const std::string& p,
                    std::vector<ConfigError>* errors);

void CheckMessage(const Message& m, const std::string& path, std::vector<ConfigError>* errors) {
  const Reflection* r = m.GetReflection();
  const Descriptor* d = m.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const v1::FieldSpec& spec = SpecOf(f);
    const std::string p = JoinPath(path, f->name());
    const int max_items = spec.has_max_items() ? spec.max_items() : kDefaultMaxItems;
    if (IsMap(f)) {
      int n = r->FieldSize(m, f);
      if (n > max_items) {
        Add(errors, p, absl::StrCat("has ", n, " entries; the limit is ", max_items));
        continue;
      }
      if (f->message_type()->map_value()->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        CheckSweepGrid(m, f, p, errors);
        continue;
      }
      // map<string, string>: sorted so that errors come in a stable order.
      std::vector<std::pair<std::string, std::string>> entries;
      for (int k = 0; k < n; ++k) {
        const Message& e = r->GetRepeatedMessage(m, f, k);
        const Reflection* er = e.GetReflection();
        entries.emplace_back(er->GetString(e, e.GetDescriptor()->map_key()),
                             er->GetString(e, e.GetDescriptor()->map_value()));
      }
      std::sort(entries.begin(), entries.end());
      for (const auto& [key, value] : entries) {
        std::string kp = KeyPath(p, IsValidUtf8(key) ? key : "?");
        if (spec.identifier()) {
          std::string err = CheckIdentifier(key);
          if (!err.empty()) Add(errors, kp, absl::StrCat("key ", err));
        }
        size_t max_len = spec.has_max_length() ? spec.max_length() : 4096;
        if (!IsValidUtf8(value)) {
          Add(errors, kp, "is not valid UTF-8");
        } else if (value.size() > max_len) {
          Add(errors, kp, absl::StrCat("is ", value.size(), " bytes long; the limit is ", max_len));
        }
      }
      continue;
    }
    if (IsMessage(f)) {
      if (!r->HasField(m, f)) {
        if (spec.required()) Add(errors, p, std::string(kMissing));
        continue;
      }
      CheckMessage(r->GetMessage(m, f), p, errors);
      continue;
    }
    if (f->is_repeated()) {
      int n = r->FieldSize(m, f);
      if (n == 0 && spec.required()) Add(errors, p, std::string(kMissing));
      if (n > max_items) {
        Add(errors, p, absl::StrCat("has ", n, " items; the limit is ", max_items));
        continue;
      }
      std::map<std::string, int> seen;
      for (int k = 0; k < n; ++k) {
        std::string err = CheckScalar(m, f, k);
        if (!err.empty()) {
          Add(errors, IndexPath(p, k), err);
          continue;
        }
        auto [it, fresh] = seen.emplace(ElementText(m, f, k), k);
        if (!fresh) {
          Add(errors, IndexPath(p, k),
              absl::StrCat(Quote(it->first), " is listed twice; first at ", IndexPath(p, it->second)));
        }
      }
      continue;
    }
    if (f->has_presence() && !r->HasField(m, f)) {
      if (spec.required()) Add(errors, p, std::string(kMissing));
      continue;
    }
    if (spec.required() && f->cpp_type() == FieldDescriptor::CPPTYPE_STRING &&
        r->GetString(m, f).empty()) {
      Add(errors, p, std::string(kMissing));
      continue;
    }
    std::string err = CheckScalar(m, f, -1);
    if (!err.empty()) Add(errors, p, err);
  }
}

void CheckSweepGrid(const Message& m, const FieldDescriptor* f, const std::string& p,
                    std::vector<ConfigError>* errors) {
  const auto& grid = static_cast<const v1::SweepConfig&>(m).grid();
  std::vector<std::string> keys;
  for (const auto& [key, values] : grid) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  for (const std::string& key : keys) {
    std::string kp = KeyPath(p, IsValidUtf8(key) ? key : "?");
    std::string err = CheckSweepKey(key);
    if (!err.empty()) {
      Add(errors, kp, err);
      continue;
    }
    const v1::SweepValues& values = grid.at(key);
    if (values.values_size() == 0) Add(errors, kp, "needs at least one value");
    std::map<std::string, int> seen;
    for (int i = 0; i < values.values_size(); ++i) {
      const std::string& v = values.values(i);
      v1::RunConfig scratch;
      err = ApplySweepValue(&scratch, key, v);
      if (!err.empty()) {
        Add(errors, IndexPath(kp, i), err);
        continue;
      }
      auto [it, fresh] = seen.emplace(v, i);
      if (!fresh) {
        Add(errors, IndexPath(kp, i),
            absl::StrCat(Quote(v), " is listed twice; first at ", IndexPath(kp, it->second)));
      }
    }
  }
}

// Rules that relate keys to each other, on a config with defaults applied.
void CheckCrossField(const v1::RunConfig& c, std::vector<ConfigError>* errors) {
  for (int i = 0; i < c.eval().pass_at_k_size(); ++i) {
    if (c.eval().pass_at_k(i) > c.eval().samples_per_task()) {
      Add(errors, IndexPath("eval.pass_at_k", i),
          absl::StrCat("`", c.eval().pass_at_k(i), "` exceeds eval.samples_per_task (",
                       c.eval().samples_per_task(), ")"));
    }
  }
  if (c.train().warmup_steps() > c.train().max_steps()) {
    Add(errors, "train.warmup_steps",
        absl::StrCat("`", c.train().warmup_steps(), "` exceeds train.max_steps (",
                     c.train().max_steps(), ")"));
  }
  if (c.expert_iteration().rounds() >= 1 && c.data().prompts_size() == 0) {
    Add(errors, "data.prompts",
        "required when expert_iteration.rounds >= 1 (the prompts to generate from)");
  }
  if (c.expert_iteration().rounds() == 0 && c.data().train_files_size() == 0) {
    Add(errors, "data.train_files",
        "required when expert_iteration.rounds is 0 (the data to train on)");
  }
}

struct Point {
  v1::RunConfig config;
  std::string assignment;  // "lora.r=8, train.learning_rate=1e-4"
};

// The grid points of a valid config with defaults applied; an error when there are too many.
absl::StatusOr<std::vector<Point>> Points(const v1::RunConfig& c) {
  std::vector<std::string> keys;
  for (const auto& [key, values] : c.sweep().grid()) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  size_t total = 1;
  for (const auto& key : keys) {
    total *= c.sweep().grid().at(key).values_size();
    if (total > static_cast<size_t>(kMaxSweepPoints)) {
      return absl::InvalidArgumentError(
          absl::StrCat("expands to more than ", kMaxSweepPoints, " runs"));
    }
  }
  const int width = static_cast<int>(absl::StrCat(total > 0 ? total - 1 : 0).size());
  std::vector<Point> points;
  for (size_t index = 0; index < total; ++index) {
    Point pt;
    pt.config = c;
    pt.config.clear_sweep();
    std::string suffix = absl::StrCat(index);
    suffix.insert(0, width - suffix.size(), '0');
    pt.config.set_name(absl::StrCat(c.name(), "-", suffix));
    (*pt.config.mutable_labels())["sweep"] = c.name();
    // Mixed radix with the last key varying fastest.
    size_t rest = index;
    std::vector<std::string> chosen(keys.size());
    for (size_t k = keys.size(); k-- > 0;) {
      const auto& values = c.sweep().grid().at(keys[k]);
      chosen[k] = values.values(static_cast<int>(rest % values.values_size()));
      rest /= values.values_size();
    }
    std::vector<std::string> parts;
    for (size_t k = 0; k < keys.size(); ++k) {
      ApplySweepValue(&pt.config, keys[k], chosen[k]);
      (*pt.config.mutable_labels())[absl::StrCat("sweep.", keys[k])] = chosen[k];
      parts.push_back(absl::StrCat(keys[k], "=", chosen[k]));
    }
    pt.assignment = absl::StrJoin(parts, ", ");
    points.push_back(std::move(pt));
  }
  return points;
}

std::string ErrorLines(const std::vector<ConfigError>& errors, std::string_view file_name) {
  std::string out;
  for (const auto& e : errors) absl::StrAppend(&out, "\n", e.ToString(file_name));
  return out;
}

}  // namespace

std::string ConfigError::ToString(std::string_view file_name) const {
  std::string out;
  if (!file_name.empty()) {
    out = std::string(file_name);
    if (line > 0) absl::StrAppend(&out, ":", line, ":", column);
    absl::StrAppend(&out, ": ");
  } else if (line > 0) {
    absl::StrAppend(&out, line, ":", column, ": ");
  }
  if (!path.empty()) absl::StrAppend(&out, path, ": ");
  absl::StrAppend(&out, message);
  return out;
}

void ApplyDefaults(v1::RunConfig* config) { ApplyDefaultsTo(config); }

std::vector<ConfigError> config_internal::CollectErrors(const v1::RunConfig& config,
                                                       bool field_level_only) {
  v1::RunConfig c = config;
  ApplyDefaults(&c);
  std::vector<ConfigError> errors;
  CheckMessage(c, "", &errors);
  if (field_level_only) return errors;
  if (c.sweep().grid().empty()) {
    CheckCrossField(c, &errors);
    return errors;
  }
  if (!errors.empty()) return errors;
  // Every grid point must be a valid run on its own.
  absl::StatusOr<std::vector<Point>> points = Points(c);
  if (!points.ok()) {
    Add(&errors, "sweep.grid", std::string(points.status().message()));
    return errors;
  }
  size_t reported = 0;
  for (const Point& pt : *points) {
    std::vector<ConfigError> point_errors;
    CheckMessage(pt.config, "", &point_errors);
    CheckCrossField(pt.config, &point_errors);
    for (const auto& e : point_errors) {
      if (reported++ == kMaxPointErrors) {
        Add(&errors, "sweep", "more invalid grid points not shown");
        return errors;
      }
      Add(&errors, "sweep",
          absl::StrCat("point ", Quote(pt.config.name()), " (", pt.assignment, "): ",
                       e.ToString("")));
    }
  }
  return errors;
}

std::vector<ConfigError> CollectConfigErrors(const v1::RunConfig& config) {
  return config_internal::CollectErrors(config, /*field_level_only=*/false);
}

absl::Status ValidateRunConfig(const v1::RunConfig& config) {
  std::vector<ConfigError> errors = CollectConfigErrors(config);
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("invalid run config (", errors.size(), errors.size() == 1 ? " error)" : " errors)",
                   ErrorLines(errors, "")));
}

absl::StatusOr<std::vector<v1::RunConfig>> ExpandSweep(const v1::RunConfig& config) {
  absl::Status status = ValidateRunConfig(config);
  if (!status.ok()) return status;
  v1::RunConfig c = config;
  ApplyDefaults(&c);
  if (c.sweep().grid().empty()) return std::vector<v1::RunConfig>{c};
  absl::StatusOr<std::vector<Point>> points = Points(c);
  if (!points.ok()) return points.status();
  std::vector<v1::RunConfig> out;
  out.reserve(points->size());
  for (Point& pt : *points) out.push_back(std::move(pt.config));
  return out;
}

}  // namespace temper
