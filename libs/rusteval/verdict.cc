#include "libs/rusteval/verdict.h"

#include "absl/strings/str_cat.h"

namespace temper::rusteval {
namespace {

using nlohmann::json;

constexpr std::pair<Stage, std::string_view> kStageNames[] = {
    {Stage::kExtract, "extract"},
    {Stage::kCheck, "check"},
    {Stage::kBuildTests, "build_tests"},
    {Stage::kRunTests, "run_tests"},
};

std::optional<Stage> StageFromName(std::string_view name) {
  for (const auto& [s, n] : kStageNames) {
    if (n == name) return s;
  }
  return std::nullopt;
}

json MetricsToJson(const SyntaxMetrics& m) {
  return json{{"parsed_cleanly", m.parsed_cleanly},
              {"functions", m.functions},
              {"structs", m.structs},
              {"enums", m.enums},
              {"impls", m.impls},
              {"traits", m.traits},
              {"tests", m.tests},
              {"public_items", m.public_items},
              {"documented_public_items", m.documented_public_items},
              {"doc_coverage", m.doc_coverage()},
              {"result_types", m.result_types},
              {"option_types", m.option_types},
              {"question_marks", m.question_marks},
              {"iterator_adaptors", m.iterator_adaptors},
              {"match_expressions", m.match_expressions},
              {"if_lets", m.if_lets},
              {"unsafe_blocks", m.unsafe_blocks},
              {"unwraps", m.unwraps},
              {"panics", m.panics}};
}

SyntaxMetrics MetricsFromJson(const json& j) {
  SyntaxMetrics m;
  m.parsed_cleanly = j.value("parsed_cleanly", false);
  m.functions = j.value("functions", 0);
  m.structs = j.value("structs", 0);
  m.enums = j.value("enums", 0);
  m.impls = j.value("impls", 0);
  m.traits = j.value("traits", 0);
  m.tests = j.value("tests", 0);
  m.public_items = j.value("public_items", 0);
  m.documented_public_items = j.value("documented_public_items", 0);
  m.result_types = j.value("result_types", 0);
  m.option_types = j.value("option_types", 0);
  m.question_marks = j.value("question_marks", 0);
  m.iterator_adaptors = j.value("iterator_adaptors", 0);
  m.match_expressions = j.value("match_expressions", 0);
  m.if_lets = j.value("if_lets", 0);
  m.unsafe_blocks = j.value("unsafe_blocks", 0);
  m.unwraps = j.value("unwraps", 0);
  m.panics = j.value("panics", 0);
  return m;
}

}  // namespace

std::string_view StageName(Stage s) {
  for (const auto& [k, n] : kStageNames) {
    if (k == s) return n;
  }
  return "unknown";
}

json ToJson(const Verdict& v) {
  json errors = json::array();
  for (const Diagnostic& d : v.errors) {
    errors.push_back({{"level", d.level}, {"code", d.code}, {"message", d.message},
                      {"rendered", d.rendered}, {"file", d.file}, {"line", d.line},
                      {"column", d.column}});
  }
  json j = {{"task_id", v.task_id},
            {"stage_reached", StageName(v.stage_reached)},
            {"compiled", v.compiled},
            {"passed", v.passed},
            {"error_class", ErrorClassName(v.error_class)},
            {"error_codes", v.error_codes},
            {"errors", errors},
            {"lints", v.lints},
            {"tests_passed", v.tests_passed},
            {"tests_failed", v.tests_failed},
            {"limit", sandbox::LimitName(v.limit)},
            {"test_output", v.test_output},
            {"timings_ms",
             {{"check", v.check_ms}, {"build", v.build_ms}, {"run", v.run_ms}, {"total", v.total_ms}}}};
  if (v.limit_stage) j["limit_stage"] = StageName(*v.limit_stage);
  if (v.syntax) j["syntax"] = MetricsToJson(*v.syntax);
  if (v.run_peak_memory_bytes) j["run_peak_memory_bytes"] = *v.run_peak_memory_bytes;
  return j;
}

absl::StatusOr<Verdict> VerdictFromJson(const json& j) {
  try {
    Verdict v;
    v.task_id = j.at("task_id").get<std::string>();
    auto stage = StageFromName(j.at("stage_reached").get<std::string>());
    if (!stage) return absl::InvalidArgumentError("verdict: unknown stage_reached");
    v.stage_reached = *stage;
    v.compiled = j.at("compiled").get<bool>();
    v.passed = j.at("passed").get<bool>();
    v.error_class = ErrorClassFromName(j.at("error_class").get<std::string>());
    v.error_codes = j.value("error_codes", std::vector<std::string>{});
    for (const json& e : j.value("errors", json::array())) {
      Diagnostic d;
      d.level = e.value("level", "");
      d.code = e.value("code", "");
      d.message = e.value("message", "");
      d.rendered = e.value("rendered", "");
      d.file = e.value("file", "");
      d.line = e.value("line", 0);
      d.column = e.value("column", 0);
      v.errors.push_back(std::move(d));
    }
    v.lints = j.value("lints", std::map<std::string, int>{});
    v.tests_passed = j.value("tests_passed", 0);
    v.tests_failed = j.value("tests_failed", 0);
    auto limit = sandbox::LimitFromName(j.value("limit", "none"));
    if (!limit) return absl::InvalidArgumentError("verdict: unknown limit");
    v.limit = *limit;
    if (j.contains("limit_stage")) v.limit_stage = StageFromName(j["limit_stage"].get<std::string>());
    if (j.contains("syntax")) v.syntax = MetricsFromJson(j["syntax"]);
    v.test_output = j.value("test_output", "");
    if (j.contains("timings_ms")) {
      const json& t = j["timings_ms"];
      v.check_ms = t.value("check", int64_t{0});
      v.build_ms = t.value("build", int64_t{0});
      v.run_ms = t.value("run", int64_t{0});
      v.total_ms = t.value("total", int64_t{0});
    }
    if (j.contains("run_peak_memory_bytes")) v.run_peak_memory_bytes = j["run_peak_memory_bytes"].get<int64_t>();
    return v;
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("verdict: ", e.what()));
  }
}

}  // namespace temper::rusteval
