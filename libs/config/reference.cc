// docs/config.md, generated from RunConfig's descriptors and `(temper.v1.field)` options.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "libs/config/run_config.h"
#include "libs/config/schema.h"

namespace temper {
namespace {

using config_internal::Descriptor;
using config_internal::FieldDescriptor;
using config_internal::IsMap;
using config_internal::IsMessage;
using config_internal::JoinPath;
using config_internal::ScalarTypeName;
using config_internal::SpecOf;

std::string Cell(std::string_view s) { return absl::StrReplaceAll(config_internal::Sv(s), {{"|", "\\|"}}); }

std::string TypeText(const FieldDescriptor* f) {
  if (IsMap(f)) {
    const FieldDescriptor* v = f->message_type()->map_value();
    return v->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE ? "map of config key to list"
                                                             : "map of string to string";
  }
  if (IsMessage(f)) return "section";
  std::string t = ScalarTypeName(f);
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_INT32) t += " (32-bit)";
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_INT64) t += " (64-bit)";
  return f->is_repeated() ? absl::StrCat("list of ", ScalarTypeName(f), "s") : t;
}

std::string DefaultText(const FieldDescriptor* f) {
  const v1::FieldSpec& spec = SpecOf(f);
  if (spec.required()) return "**required**";
  if (spec.has_default_()) return absl::StrCat("`", spec.default_(), "`");
  if (spec.has_default_doc()) return absl::StrCat("`", spec.default_doc(), "`");
  return "";
}

std::string AllowedText(const FieldDescriptor* f) {
  const v1::FieldSpec& spec = SpecOf(f);
  std::vector<std::string> parts;
  if (spec.choices_size() > 0) {
    std::vector<std::string> c;
    for (const auto& choice : spec.choices()) c.push_back(absl::StrCat("`", choice, "`"));
    parts.push_back(absl::StrJoin(c, ", "));
  }
  std::string range = config_internal::RangeText(f);
  if (!range.empty()) parts.push_back(absl::StrCat("`", range, "`"));
  if (spec.identifier()) {
    parts.push_back(IsMap(f) ? "keys `[A-Za-z0-9._-]{1,128}`" : "`[A-Za-z0-9._-]{1,128}`");
  }
  if (spec.has_max_length()) {
    parts.push_back(absl::StrCat(IsMap(f) ? "values at most " : "at most ", spec.max_length(),
                                 " bytes"));
  }
  if (spec.has_max_items()) {
    parts.push_back(absl::StrCat("at most ", spec.max_items(), IsMap(f) ? " entries" : " items"));
  }
  return absl::StrJoin(parts, "; ");
}

void Rows(const Descriptor* d, const std::string& prefix, std::string* out) {
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    std::string path = JoinPath(prefix, f->name());
    std::string help = SpecOf(f).help();
    if (!SpecOf(f).aliases().empty()) {
      std::vector<std::string> a;
      for (const auto& alias : SpecOf(f).aliases()) a.push_back(absl::StrCat("`", alias, "`"));
      absl::StrAppend(&help, " (", absl::StrJoin(a, ", "), " is suggested as this key)");
    }
    absl::StrAppend(out, "| `", path, "` | ", TypeText(f), " | ", Cell(DefaultText(f)), " | ",
                    Cell(AllowedText(f)), " | ", Cell(help), " |\n");
    if (IsMessage(f)) Rows(f->message_type(), path, out);
  }
}

constexpr std::string_view kIntro = R"(# Run configuration reference

<!-- Generated from the (temper.v1.field) options in proto/temper/v1/config.proto by
     RenderConfigReference() in libs/config/reference.cc. Do not edit by hand; regenerate with
     TEMPER_UPDATE_DOCS=1 build/dev/libs/config/config_test --gtest_filter='ConfigReference.*' -->

A run is described in YAML that maps one to one onto the `temper.v1.RunConfig` message. The CLI
checks the file before anything is sent and the coordinator checks the config again when it
arrives, with the same rules and the same messages. See `examples/run.yaml` and
`examples/sweep.yaml`.

## Rules

- Keys are the names below, nested as sections (`lora:` then `r: 16`); dotted keys are not
  expanded. An unknown or duplicated key is an error, with a suggestion when one is close.
- Types are strict: an integer key takes a plain integer (not `16.5`, not `"16"`), a number key a
  finite number, a boolean key `true` or `false`, a list key a list, a section a map. A key
  with no value (`lora:` followed by nothing) is an error; leave the key out instead.
- An absent key takes its default; the parsed config has every default filled in.
- Every string must be valid UTF-8 and at most 4096 bytes unless stated; lists hold at most
  10000 items unless stated; no element of a list may appear twice. The file is at most 1 MiB
  and holds one YAML document.
- Rules across keys: every `eval.pass_at_k` is at most `eval.samples_per_task`;
  `train.warmup_steps` is at most `train.max_steps`; `data.prompts` is needed when
  `expert_iteration.rounds` is at least 1, and `data.train_files` when it is 0.
- Errors are reported all at once, one per line, as `file:line:column: path: message`, for
  example ``run.yaml:7:3: lora.rank: unknown key; did you mean `lora.r`?``. Paths name list
  elements as `lora.target_modules[2]` and map entries as `labels[team]`.

## Sweeps

`sweep.grid` maps config keys to the values to try:

```yaml
sweep:
  grid:
    lora.r: [8, 16, 32]
    train.learning_rate: [1e-4, 2e-4]
    lora.target_modules: [[q_proj, v_proj], [q_proj, k_proj, v_proj, o_proj]]
```

Each key must be a key from the table below other than `name`, `labels` and `sweep.*`, and each
value is checked as that key would be (a value for a list key is itself a list). The sweep
expands to the cartesian product of the values (at most 1024 runs): keys sorted, the last
varying fastest; point i is named `<name>-<i>` (i zero-padded) and labelled `sweep: <name>` and
`sweep.<key>: <value>`. Every point must be a valid run on its own.

## Keys

| key | type | default | allowed | meaning |
| --- | --- | --- | --- | --- |
)";

}  // namespace

std::string RenderConfigReference() {
  std::string out(kIntro);
  Rows(v1::RunConfig::descriptor(), "", &out);
  return out;
}

}  // namespace temper
