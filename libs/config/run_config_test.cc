#include "libs/config/run_config.h"

#include <cstdlib>
#include <set>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "temper/v1/options.pb.h"

namespace temper {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;

std::string SourcePath(const std::string& rel) {
  const char* dir = std::getenv("TEMPER_SOURCE_DIR");
  return std::string(dir != nullptr ? dir : ".") + "/" + rel;
}

std::string ReadFile(const std::string& rel) {
  std::ifstream in(SourcePath(rel), std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << SourcePath(rel);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Fixture(const std::string& name) {
  return ReadFile("tests/fixtures/config/" + name);
}

// The errors for a fixture; also checks that nothing is returned alongside them.
std::vector<ConfigError> ErrorsFor(const std::string& fixture) {
  std::vector<ConfigError> errors;
  absl::StatusOr<v1::RunConfig> r = ParseRunConfigYaml(Fixture(fixture), fixture, &errors);
  EXPECT_FALSE(r.ok()) << fixture << " parsed but should not have";
  if (!r.ok()) {
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    for (const auto& e : errors) {
      EXPECT_THAT(std::string(r.status().message()), HasSubstr(e.ToString(fixture)));
    }
  }
  EXPECT_FALSE(errors.empty());
  return errors;
}

std::string Dump(const std::vector<ConfigError>& errors) {
  std::string out;
  for (const auto& e : errors) out += e.ToString("f") + "\n";
  return out;
}

// Expects exactly one error at `path`, on `line`, whose message contains `text`.
void ExpectError(const std::vector<ConfigError>& errors, const std::string& path, int line,
                 const std::string& text) {
  int found = 0;
  for (const auto& e : errors) {
    if (e.path != path) continue;
    ++found;
    EXPECT_EQ(e.line, line) << path;
    EXPECT_GT(e.column, 0) << path;
    EXPECT_THAT(e.message, HasSubstr(text)) << path;
  }
  EXPECT_EQ(found, 1) << "errors at " << path << " in:\n" << Dump(errors);
}

v1::RunConfig ParseOk(const std::string& yaml) {
  std::vector<ConfigError> errors;
  absl::StatusOr<v1::RunConfig> r = ParseRunConfigYaml(yaml, "test.yaml", &errors);
  EXPECT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(errors.empty());
  return r.ok() ? *r : v1::RunConfig();
}

// A valid config built in code, as the coordinator might receive it.
v1::RunConfig ValidProto() {
  v1::RunConfig c;
  c.set_name("valid-run");
  c.mutable_model()->set_path("models/x");
  c.mutable_data()->add_prompts("p.jsonl");
  return c;
}

// ---- Valid files ------------------------------------------------------------------------------

TEST(ParseRunConfigYaml, ExampleRunIsValid) {
  v1::RunConfig c = ParseOk(ReadFile("examples/run.yaml"));
  EXPECT_EQ(c.name(), "tiny-llama-ei");
  EXPECT_EQ(c.model().path(), "tests/fixtures/models/tiny-llama");
  EXPECT_EQ(c.expert_iteration().rounds(), 2);
  EXPECT_EQ(c.eval().benchmark(), "humaneval-x");
  EXPECT_EQ(c.resources().gpus(), 1);
  EXPECT_EQ(c.lora().target_modules_size(), 4);
  EXPECT_DOUBLE_EQ(c.train().learning_rate(), 2e-4);
  EXPECT_EQ(c.labels().at("owner"), "ml-platform");
  EXPECT_TRUE(ValidateRunConfig(c).ok());
}

TEST(ParseRunConfigYaml, ValidFilesRoundTrip) {
  for (const char* file : {"examples/run.yaml", "examples/sweep.yaml",
                           "tests/fixtures/config/minimal.yaml"}) {
    v1::RunConfig first = ParseOk(ReadFile(file));
    std::string yaml = RunConfigToYaml(first);
    v1::RunConfig second = ParseOk(yaml);
    EXPECT_TRUE(MessageDifferencer::Equals(first, second)) << file << ":\n" << yaml;
    EXPECT_EQ(RunConfigToYaml(second), yaml);
  }
}

TEST(ParseRunConfigYaml, RoundTripsAwkwardStrings) {
  v1::RunConfig c = ValidProto();
  c.set_description("multi\nline: with \"quotes\", # not a comment, null, café");
  (*c.mutable_labels())["k"] = "~";
  c.mutable_model()->set_adapter("null");
  c.mutable_train()->set_learning_rate(1.0 / 3.0);
  c.mutable_train()->set_seed(-9223372036854775807LL);
  v1::RunConfig back = ParseOk(RunConfigToYaml(c));
  ApplyDefaults(&c);
  EXPECT_TRUE(MessageDifferencer::Equals(c, back)) << RunConfigToYaml(c);
}

// ---- Defaults ---------------------------------------------------------------------------------

TEST(ApplyDefaults, AbsentKeysGetDefaults) {
  v1::RunConfig c = ParseOk(Fixture("minimal.yaml"));
  EXPECT_EQ(c.lora().r(), 16);
  EXPECT_DOUBLE_EQ(c.lora().alpha(), 32);
  EXPECT_DOUBLE_EQ(c.lora().dropout(), 0.05);
  EXPECT_EQ(c.lora().target_modules_size(), 7);
  EXPECT_EQ(c.quantization().method(), "nf4");
  EXPECT_EQ(c.quantization().block_size(), 64);
  EXPECT_TRUE(c.quantization().double_quant());
  EXPECT_EQ(c.model().architecture(), "auto");
  EXPECT_EQ(c.model().dtype(), "bf16");
  EXPECT_TRUE(c.model().tokenizer().empty());  // derived by its consumer from model.path
  EXPECT_DOUBLE_EQ(c.train().learning_rate(), 2e-4);
  EXPECT_EQ(c.train().max_steps(), 100);
  EXPECT_EQ(c.train().warmup_steps(), 10);
  EXPECT_EQ(c.train().seq_len(), 2048);
  EXPECT_TRUE(c.train().gradient_checkpointing());
  EXPECT_DOUBLE_EQ(c.data().holdout_fraction(), 0.1);
  EXPECT_EQ(c.eval().benchmark(), "humaneval-x");
  ASSERT_EQ(c.eval().pass_at_k_size(), 1);
  EXPECT_EQ(c.eval().pass_at_k(0), 1);
  EXPECT_EQ(c.expert_iteration().rounds(), 1);
  EXPECT_DOUBLE_EQ(c.expert_iteration().top_p(), 0.95);
  EXPECT_EQ(c.resources().gpus(), 1);
  EXPECT_EQ(c.resources().max_attempts(), 3);
  EXPECT_FALSE(c.has_sweep());
}

TEST(ApplyDefaults, ExplicitZeroIsKept) {
  v1::RunConfig c = ParseOk(Fixture("minimal.yaml") +
                            "resources: {gpus: 0}\nquantization: {double_quant: false}\n"
                            "train: {warmup_steps: 0, gradient_checkpointing: false}\n");
  EXPECT_EQ(c.resources().gpus(), 0);
  EXPECT_FALSE(c.quantization().double_quant());
  EXPECT_EQ(c.train().warmup_steps(), 0);
  EXPECT_FALSE(c.train().gradient_checkpointing());
}

TEST(ApplyDefaults, IsIdempotentAndDefaultsAreValid) {
  v1::RunConfig c = ValidProto();
  ApplyDefaults(&c);
  v1::RunConfig again = c;
  ApplyDefaults(&again);
  EXPECT_TRUE(MessageDifferencer::Equals(c, again));
  EXPECT_TRUE(ValidateRunConfig(c).ok()) << ValidateRunConfig(c);
}

// Every non-zero default must be distinguishable from an absent key, and must parse.
void CheckSchema(const google::protobuf::Descriptor* d) {
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const v1::FieldSpec& spec = f->options().GetExtension(v1::field);
    EXPECT_TRUE(spec.has_help()) << f->full_name() << " has no help text";
    if (f->is_map()) continue;
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      CheckSchema(f->message_type());
      continue;
    }
    if (!spec.has_default_() || f->is_repeated()) continue;
    const std::string& def = spec.default_();
    bool zero = def == "0" || def == "false" || def.empty();
    EXPECT_TRUE(zero || f->has_presence())
        << f->full_name() << " has default " << def << " but no presence; make it `optional`";
  }
}

TEST(Schema, NonZeroDefaultsHavePresence) { CheckSchema(v1::RunConfig::descriptor()); }

// ---- Errors from YAML, one kind per fixture ---------------------------------------------------

TEST(ParseRunConfigYaml, UnknownKeysSuggest) {
  auto errors = ErrorsFor("unknown_keys.yaml");
  ASSERT_EQ(errors.size(), 5u) << Dump(errors);
  ExpectError(errors, "lora.rank", 7, "unknown key; did you mean `lora.r`?");
  ExpectError(errors, "lora.alpah", 8, "did you mean `lora.alpha`?");
  ExpectError(errors, "train.lr", 10, "did you mean `train.learning_rate`?");
  ExpectError(errors, "r", 11, "did you mean `lora.r`?");
  ExpectError(errors, "lora.dropout", 12, "nest `dropout` under `lora`");
  EXPECT_EQ(errors[0].ToString("unknown_keys.yaml"),
            "unknown_keys.yaml:7:3: lora.rank: unknown key; did you mean `lora.r`?");
}

TEST(ParseRunConfigYaml, WrongTypes) {
  auto errors = ErrorsFor("wrong_types.yaml");
  ASSERT_EQ(errors.size(), 8u) << Dump(errors);
  ExpectError(errors, "lora.r", 7, "expected an integer, got the string `16`");
  ExpectError(errors, "lora.target_modules", 8, "expected a list of strings, got a map");
  ExpectError(errors, "train.micro_batch_size", 10, "expected an integer, got the fraction `2.5`");
  ExpectError(errors, "train.seq_len", 11, "out of range for a 32-bit integer");
  ExpectError(errors, "train.learning_rate", 12, "expected a number, got `fast`");
  ExpectError(errors, "train.packing", 13, "expected a boolean (true or false), got `yes`");
  ExpectError(errors, "eval", 14, "expected a map of keys, got a list");
  ExpectError(errors, "priority", 16, "expected an integer, got a map");
}

TEST(ParseRunConfigYaml, OutOfRange) {
  auto errors = ErrorsFor("out_of_range.yaml");
  ASSERT_EQ(errors.size(), 5u) << Dump(errors);
  ExpectError(errors, "lora.r", 7, "`0` is out of range; expected 1..1024");
  ExpectError(errors, "lora.dropout", 8, "`1` is out of range; expected [0, 1)");
  ExpectError(errors, "eval.timeout_seconds", 10, "expected 1..600");
  ExpectError(errors, "priority", 11, "expected -100..100");
  ExpectError(errors, "resources.gpus", 13, "expected 0..64");
}

TEST(ParseRunConfigYaml, MissingRequired) {
  auto errors = ErrorsFor("missing_required.yaml");
  ASSERT_EQ(errors.size(), 2u) << Dump(errors);
  ExpectError(errors, "name", 1, "missing required key");
  ExpectError(errors, "model.path", 2, "missing required key");  // at the `model:` key
}

TEST(ParseRunConfigYaml, InvalidChoices) {
  auto errors = ErrorsFor("bad_choices.yaml");
  ASSERT_EQ(errors.size(), 5u) << Dump(errors);
  ExpectError(errors, "model.dtype", 4, "`bf32` is not one of bf16, fp16, fp32; did you mean `bf16`?");
  ExpectError(errors, "quantization.method", 8, "`nf5` is not one of none, nf4; did you mean `nf4`?");
  ExpectError(errors, "lora.target_modules[2]", 10, "`qkv_proj` is not one of q_proj");
  ExpectError(errors, "lora.target_modules[3]", 10, "listed twice; first at lora.target_modules[1]");
  ExpectError(errors, "eval.benchmark", 12, "did you mean `humaneval-x`?");
}

TEST(ParseRunConfigYaml, DuplicateKeys) {
  auto errors = ErrorsFor("duplicate_keys.yaml");
  ASSERT_EQ(errors.size(), 2u) << Dump(errors);
  ExpectError(errors, "lora.r", 8, "duplicate key; first given on line 7");
  ExpectError(errors, "name", 9, "duplicate key; first given on line 1");
}

TEST(ParseRunConfigYaml, SyntaxErrorHasItsLine) {
  auto errors = ErrorsFor("syntax_error.yaml");
  ASSERT_EQ(errors.size(), 1u) << Dump(errors);
  EXPECT_THAT(errors[0].message, HasSubstr("YAML syntax error"));
  EXPECT_GE(errors[0].line, 5);
  EXPECT_LE(errors[0].line, 6);
}

TEST(ParseRunConfigYaml, NullValues) {
  auto errors = ErrorsFor("null_values.yaml");
  ASSERT_EQ(errors.size(), 2u) << Dump(errors);
  ExpectError(errors, "lora", 6, "has no value");
  ExpectError(errors, "train.max_steps", 8, "has no value");
}

TEST(ParseRunConfigYaml, InvalidUtf8) {
  auto errors = ErrorsFor("invalid_utf8.yaml");
  ASSERT_EQ(errors.size(), 1u) << Dump(errors);
  EXPECT_EQ(errors[0].line, 4);
  EXPECT_EQ(errors[0].column, 17);
  EXPECT_THAT(errors[0].message, HasSubstr("invalid UTF-8"));
}

TEST(ParseRunConfigYaml, OneDocumentOnly) {
  auto errors = ErrorsFor("two_documents.yaml");
  ASSERT_EQ(errors.size(), 1u) << Dump(errors);
  EXPECT_EQ(errors[0].line, 5);
  EXPECT_THAT(errors[0].message, HasSubstr("expected one YAML document, found 2"));
}

TEST(ParseRunConfigYaml, EmptyAndNonMapInput) {
  for (const char* yaml : {"", "# only a comment\n", "just text", "[1, 2]"}) {
    std::vector<ConfigError> errors;
    EXPECT_FALSE(ParseRunConfigYaml(yaml, "x.yaml", &errors).ok()) << yaml;
    EXPECT_EQ(errors.size(), 1u) << yaml << "\n" << Dump(errors);
  }
}

TEST(ParseRunConfigYaml, OversizeInputIsRejectedBeforeParsing) {
  std::string yaml = Fixture("minimal.yaml") + "# " + std::string(kMaxConfigBytes, 'x') + "\n";
  std::vector<ConfigError> errors;
  absl::StatusOr<v1::RunConfig> r = ParseRunConfigYaml(yaml, "big.yaml", &errors);
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0].message, HasSubstr("the limit is 1048576"));
}

TEST(ParseRunConfigYaml, ControlCharactersAndDeepNestingFailCleanly) {
  std::vector<ConfigError> errors;
  EXPECT_FALSE(ParseRunConfigYaml("name: a\x01" "b\n", "c.yaml", &errors).ok());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0].message, HasSubstr("control character 0x01"));
  std::string deep = "name: " + std::string(100000, '[');
  EXPECT_FALSE(ParseRunConfigYaml(deep, "deep.yaml", &errors).ok());
  EXPECT_FALSE(errors.empty());
}

TEST(ParseRunConfigYaml, StatusListsEveryErrorWithLocation) {
  absl::StatusOr<v1::RunConfig> r = ParseRunConfigYaml(Fixture("out_of_range.yaml"), "oor.yaml");
  ASSERT_FALSE(r.ok());
  std::string msg(r.status().message());
  EXPECT_THAT(msg, HasSubstr("oor.yaml: invalid run config (5 errors)"));
  EXPECT_THAT(msg, HasSubstr("\noor.yaml:7:6: lora.r: `0` is out of range; expected 1..1024"));
  EXPECT_THAT(msg, HasSubstr("\noor.yaml:13:9: resources.gpus: "));
}

TEST(ParseRunConfigYaml, NothingIsReturnedWhenAnythingIsInvalid) {
  // One bad key among many good ones still fails the whole file.
  std::string yaml = ReadFile("examples/run.yaml") + "priority: 101\n";
  std::vector<ConfigError> errors;
  absl::StatusOr<v1::RunConfig> r = ParseRunConfigYaml(yaml, "run.yaml", &errors);
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].path, "priority");
}

TEST(ParseRunConfigYaml, SqlMetacharactersInNameAreRejected) {
  auto errors = ErrorsFor("sql_name.yaml");
  ASSERT_EQ(errors.size(), 1u) << Dump(errors);
  ExpectError(errors, "name", 1, "has the character `'` at offset 1");
  EXPECT_THAT(errors[0].message, HasSubstr("1 to 128 characters from A-Z a-z 0-9 . _ -"));
  // The same rule holds for a config that never saw YAML.
  v1::RunConfig c = ValidProto();
  c.set_name("x'; DROP TABLE runs;--");
  absl::Status s = ValidateRunConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("name: `x'; DROP TABLE runs;--` has the character"));
}

TEST(ParseRunConfigYaml, CrossFieldRules) {
  auto errors = ErrorsFor("cross_field.yaml");
  ASSERT_EQ(errors.size(), 3u) << Dump(errors);
  ExpectError(errors, "eval.pass_at_k[1]", 6, "`10` exceeds eval.samples_per_task (5)");
  ExpectError(errors, "train.warmup_steps", 8, "`200` exceeds train.max_steps (100)");
  ExpectError(errors, "data.train_files", 1, "required when expert_iteration.rounds is 0");
}

TEST(ParseRunConfigYaml, CrossFieldRulesUseDefaults) {
  // warmup_steps defaults to 10, more than the 5 steps asked for.
  std::vector<ConfigError> errors;
  EXPECT_FALSE(ParseRunConfigYaml(Fixture("minimal.yaml") + "train: {max_steps: 5}\n", "t.yaml",
                                  &errors).ok());
  ASSERT_EQ(errors.size(), 1u) << Dump(errors);
  EXPECT_EQ(errors[0].path, "train.warmup_steps");
  EXPECT_EQ(errors[0].line, 6);
}

// ---- Sweeps -----------------------------------------------------------------------------------

TEST(ParseRunConfigYaml, SweepKeysAndValuesAreChecked) {
  auto errors = ErrorsFor("bad_sweep.yaml");
  ASSERT_EQ(errors.size(), 8u) << Dump(errors);
  ExpectError(errors, "sweep.grid[lora.rank]", 8, "is not a config key; did you mean `lora.r`?");
  ExpectError(errors, "sweep.grid[lora.r][1]", 9, "`2000` is out of range; expected 1..1024");
  ExpectError(errors, "sweep.grid[lora.r][2]", 9, "expected an integer, got the string `32`");
  ExpectError(errors, "sweep.grid[lora.r][3]", 9, "listed twice; first at sweep.grid[lora.r][0]");
  ExpectError(errors, "sweep.grid[quantization.method][1]", 10, "`nf5` is not one of none, nf4");
  ExpectError(errors, "sweep.grid[lora.target_modules][1]", 11, "`qq_proj` is not one of");
  ExpectError(errors, "sweep.grid[name]", 12, "cannot be swept");
  ExpectError(errors, "sweep.grid[train.max_steps]", 13, "expected a list of values to try");
}

TEST(ParseRunConfigYaml, EverySweepPointMustBeValid) {
  auto errors = ErrorsFor("sweep_point_invalid.yaml");
  ASSERT_EQ(errors.size(), 1u) << Dump(errors);
  EXPECT_EQ(errors[0].path, "sweep");
  EXPECT_THAT(errors[0].message,
              HasSubstr("point `sweep-points-0` (eval.samples_per_task=2): eval.pass_at_k[0]: "
                        "`4` exceeds eval.samples_per_task (2)"));
}

TEST(ExpandSweep, CartesianProductInADeterministicOrder) {
  v1::RunConfig c = ParseOk(ReadFile("examples/sweep.yaml"));
  absl::StatusOr<std::vector<v1::RunConfig>> points = ExpandSweep(c);
  ASSERT_TRUE(points.ok()) << points.status();
  ASSERT_EQ(points->size(), 12u);
  // Keys sorted (lora.r, lora.target_modules, train.learning_rate), the last varying fastest.
  const v1::RunConfig& p0 = (*points)[0];
  EXPECT_EQ(p0.name(), "tiny-llama-sweep-00");
  EXPECT_EQ(p0.lora().r(), 8);
  EXPECT_EQ(p0.lora().target_modules_size(), 2);
  EXPECT_DOUBLE_EQ(p0.train().learning_rate(), 1e-4);
  EXPECT_DOUBLE_EQ((*points)[1].train().learning_rate(), 2e-4);
  EXPECT_EQ((*points)[1].lora().r(), 8);
  EXPECT_EQ((*points)[2].lora().target_modules_size(), 4);
  const v1::RunConfig& last = (*points)[11];
  EXPECT_EQ(last.name(), "tiny-llama-sweep-11");
  EXPECT_EQ(last.lora().r(), 32);
  EXPECT_EQ(last.labels().at("sweep"), "tiny-llama-sweep");
  EXPECT_EQ(last.labels().at("sweep.lora.r"), "32");
  EXPECT_EQ(last.labels().at("sweep.lora.target_modules"), "[q_proj, k_proj, v_proj, o_proj]");
  std::set<std::string> names;
  for (const auto& p : *points) {
    EXPECT_FALSE(p.has_sweep());
    EXPECT_DOUBLE_EQ(p.lora().alpha(), 32);  // the base's keys are kept
    EXPECT_TRUE(ValidateRunConfig(p).ok()) << ValidateRunConfig(p);
    names.insert(p.name());
  }
  EXPECT_EQ(names.size(), 12u);
  absl::StatusOr<std::vector<v1::RunConfig>> again = ExpandSweep(c);
  ASSERT_TRUE(again.ok());
  for (size_t i = 0; i < points->size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals((*points)[i], (*again)[i]));
  }
}

TEST(ExpandSweep, NoGridIsOneRun) {
  absl::StatusOr<std::vector<v1::RunConfig>> points = ExpandSweep(ValidProto());
  ASSERT_TRUE(points.ok());
  ASSERT_EQ(points->size(), 1u);
  EXPECT_EQ((*points)[0].name(), "valid-run");
  EXPECT_EQ((*points)[0].lora().r(), 16);
}

TEST(ExpandSweep, RejectsInvalidConfigsAndHugeGrids) {
  v1::RunConfig c = ValidProto();
  (*c.mutable_sweep()->mutable_grid())["lora.r"].add_values("abc");
  absl::StatusOr<std::vector<v1::RunConfig>> points = ExpandSweep(c);
  ASSERT_FALSE(points.ok());
  EXPECT_THAT(std::string(points.status().message()),
              HasSubstr("sweep.grid[lora.r][0]: expected an integer, got `abc`"));

  v1::RunConfig big = ValidProto();
  for (const char* key : {"train.seed", "priority"}) {
    for (int i = 0; i < 33; ++i) {
      (*big.mutable_sweep()->mutable_grid())[key].add_values(std::to_string(i));
    }
  }
  points = ExpandSweep(big);
  ASSERT_FALSE(points.ok());
  EXPECT_THAT(std::string(points.status().message()),
              HasSubstr("sweep.grid: expands to more than 1024 runs"));
}

// ---- Validation of configs that did not come from YAML ---------------------------------------

TEST(ValidateRunConfig, AcceptsAValidConfig) {
  EXPECT_TRUE(ValidateRunConfig(ValidProto()).ok());
  EXPECT_TRUE(CollectConfigErrors(ValidProto()).empty());
}

// Each mutation alone makes a valid config invalid, at the given path: if validation did
// nothing, every case here would fail.
TEST(ValidateRunConfig, RejectsEachKindOfProblem) {
  struct Case {
    const char* path;
    const char* text;
    void (*mutate)(v1::RunConfig*);
  };
  const Case cases[] = {
      {"name", "missing required key", [](v1::RunConfig* c) { c->clear_name(); }},
      {"name", "has the character ` `", [](v1::RunConfig* c) { c->set_name("a b"); }},
      {"name", "129 characters long", [](v1::RunConfig* c) { c->set_name(std::string(129, 'a')); }},
      // An absent model reads as an absent model.path, the key that is needed.
      {"model.path", "missing required key", [](v1::RunConfig* c) { c->clear_model(); }},
      {"model.path", "missing required key", [](v1::RunConfig* c) { c->mutable_model()->clear_path(); }},
      {"description", "not valid UTF-8", [](v1::RunConfig* c) { c->set_description("caf\xc3"); }},
      {"model.path", "4097 bytes long", [](v1::RunConfig* c) { c->mutable_model()->set_path(std::string(4097, 'p')); }},
      {"lora.r", "`0` is out of range; expected 1..1024", [](v1::RunConfig* c) { c->mutable_lora()->set_r(0); }},
      {"lora.r", "`1025` is out of range", [](v1::RunConfig* c) { c->mutable_lora()->set_r(1025); }},
      {"lora.alpha", "expected > 0", [](v1::RunConfig* c) { c->mutable_lora()->set_alpha(0); }},
      {"lora.dropout", "expected [0, 1)", [](v1::RunConfig* c) { c->mutable_lora()->set_dropout(1); }},
      {"lora.target_modules[0]", "`mlp` is not one of", [](v1::RunConfig* c) { c->mutable_lora()->add_target_modules("mlp"); }},
      {"quantization.method", "`nf5` is not one of none, nf4", [](v1::RunConfig* c) { c->mutable_quantization()->set_method("nf5"); }},
      {"train.learning_rate", "expected (0, 1]", [](v1::RunConfig* c) { c->mutable_train()->set_learning_rate(1.5); }},
      {"train.max_steps", "expected >= 1", [](v1::RunConfig* c) { c->mutable_train()->set_max_steps(0); c->mutable_train()->set_warmup_steps(0); }},
      {"train.warmup_steps", "exceeds train.max_steps (100)", [](v1::RunConfig* c) { c->mutable_train()->set_warmup_steps(101); }},
      {"eval.pass_at_k[0]", "`2` exceeds eval.samples_per_task (1)", [](v1::RunConfig* c) { c->mutable_eval()->add_pass_at_k(2); }},
      {"eval.benchmark", "did you mean `multipl-e`?", [](v1::RunConfig* c) { c->mutable_eval()->set_benchmark("multiple"); }},
      {"data.prompts", "required when expert_iteration.rounds >= 1", [](v1::RunConfig* c) { c->mutable_data()->clear_prompts(); }},
      {"data.prompts[1]", "listed twice", [](v1::RunConfig* c) { c->mutable_data()->add_prompts("p.jsonl"); }},
      {"resources.gpus", "expected 0..64", [](v1::RunConfig* c) { c->mutable_resources()->set_gpus(-1); }},
      {"priority", "expected -100..100", [](v1::RunConfig* c) { c->set_priority(1000); }},
      {"labels[bad key]", "key `bad key` has the character", [](v1::RunConfig* c) { (*c->mutable_labels())["bad key"] = "v"; }},
      {"labels[k]", "257 bytes long; the limit is 256", [](v1::RunConfig* c) { (*c->mutable_labels())["k"] = std::string(257, 'v'); }},
      {"sweep.grid[lora]", "is a section", [](v1::RunConfig* c) { (*c->mutable_sweep()->mutable_grid())["lora"].add_values("1"); }},
      {"sweep.grid[lora.r]", "needs at least one value", [](v1::RunConfig* c) { (*c->mutable_sweep()->mutable_grid())["lora.r"]; }},
      {"sweep.grid[lora.target_modules][0]", "expected a list such as [a, b]", [](v1::RunConfig* c) { (*c->mutable_sweep()->mutable_grid())["lora.target_modules"].add_values("q_proj"); }},
  };
  for (const Case& tc : cases) {
    v1::RunConfig c = ValidProto();
    tc.mutate(&c);
    std::vector<ConfigError> errors = CollectConfigErrors(c);
    ASSERT_EQ(errors.size(), 1u) << tc.path << ":\n" << Dump(errors);
    EXPECT_EQ(errors[0].path, tc.path);
    EXPECT_THAT(errors[0].message, HasSubstr(tc.text)) << tc.path;
    EXPECT_EQ(errors[0].line, 0);
    absl::Status s = ValidateRunConfig(c);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << tc.path;
    EXPECT_THAT(std::string(s.message()), HasSubstr(std::string(tc.path) + ": ")) << tc.path;
  }
}

TEST(ValidateRunConfig, SameMessagesAsTheYamlParser) {
  std::vector<ConfigError> yaml_errors;
  ASSERT_FALSE(ParseRunConfigYaml(Fixture("minimal.yaml") + "lora: {r: 0}\n", "m.yaml",
                                  &yaml_errors).ok());
  v1::RunConfig c = ValidProto();
  c.mutable_lora()->set_r(0);
  std::vector<ConfigError> proto_errors = CollectConfigErrors(c);
  ASSERT_EQ(yaml_errors.size(), 1u);
  ASSERT_EQ(proto_errors.size(), 1u);
  EXPECT_EQ(yaml_errors[0].path, proto_errors[0].path);
  EXPECT_EQ(yaml_errors[0].message, proto_errors[0].message);
}

TEST(ConfigError, ToString) {
  ConfigError e{"lora.r", 3, 5, "bad"};
  EXPECT_EQ(e.ToString("run.yaml"), "run.yaml:3:5: lora.r: bad");
  EXPECT_EQ(e.ToString(""), "3:5: lora.r: bad");
  ConfigError no_line{"lora.r", 0, 0, "bad"};
  EXPECT_EQ(no_line.ToString(""), "lora.r: bad");
  EXPECT_EQ(no_line.ToString("run.yaml"), "run.yaml: lora.r: bad");
}

// ---- Reference --------------------------------------------------------------------------------

TEST(ConfigReference, DocsAreUpToDate) {
  std::string rendered = RenderConfigReference();
  const char* update = std::getenv("TEMPER_UPDATE_DOCS");
  if (update != nullptr && std::string(update) == "1") {
    std::ofstream(SourcePath("docs/config.md"), std::ios::binary) << rendered;
  }
  EXPECT_EQ(ReadFile("docs/config.md"), rendered)
      << "docs/config.md is stale; regenerate it with TEMPER_UPDATE_DOCS=1 "
         "build/dev/libs/config/config_test --gtest_filter='ConfigReference.*'";
}

TEST(ConfigReference, ListsEveryKey) {
  std::string doc = RenderConfigReference();
  for (const char* path : {"`name`", "`lora.r`", "`lora.target_modules`", "`sweep.grid`",
                           "`resources.max_attempts`", "`expert_iteration.dedup`"}) {
    EXPECT_THAT(doc, HasSubstr(std::string("| ") + path + " |"));
  }
  EXPECT_THAT(doc, HasSubstr("| `lora.r` | integer (32-bit) | `16` | `1..1024` |"));
  EXPECT_THAT(doc, HasSubstr("`none`, `nf4`"));
}

}  // namespace
}  // namespace temper
