#include "services/eval-worker/summary.h"

#include "absl/strings/str_cat.h"
#include "libs/rusteval/pass_at_k.h"

namespace temper::evalworker {

using nlohmann::json;
using rusteval::ErrorClass;

std::string_view OutcomeName(const rusteval::Verdict& v) {
  if (v.passed) return "passed";
  switch (v.error_class) {
    case ErrorClass::kSyntax:
    case ErrorClass::kUnresolved:
    case ErrorClass::kTypeMismatch:
    case ErrorClass::kBorrow:
    case ErrorClass::kTraitBound:
    case ErrorClass::kOtherCompile:
      return "compile_error";
    case ErrorClass::kTestFailure:
      return "test_failed";
    case ErrorClass::kTimeout:
      return "timeout";
    case ErrorClass::kResourceLimit:
      return "resource_limit";
    case ErrorClass::kNoCode:
      return "no_code";
    case ErrorClass::kNone:
      break;
  }
  return "other";
}

const std::vector<std::string_view>& OutcomeNames() {
  static const std::vector<std::string_view> names = {"passed",         "compile_error", "test_failed", "timeout",
                                                      "resource_limit", "no_code",       "other"};
  return names;
}

Tally::Tally() {
  for (auto n : OutcomeNames()) outcomes[std::string(n)] = 0;
}

void Tally::Add(const rusteval::Verdict& v) {
  ++samples;
  ++outcomes[std::string(OutcomeName(v))];
  if (!v.passed && v.error_class != ErrorClass::kNone) ++error_classes[std::string(ErrorClassName(v.error_class))];
  if (v.limit != sandbox::Limit::kNone) ++limit_kills[std::string(sandbox::LimitName(v.limit))];
  for (const auto& [name, count] : v.lints) lints[name] += count;
  check_ms += v.check_ms;
  build_ms += v.build_ms;
  run_ms += v.run_ms;
}

int64_t Tally::outcome(std::string_view name) const {
  auto it = outcomes.find(std::string(name));
  return it == outcomes.end() ? 0 : it->second;
}

int64_t Tally::total_limit_kills() const {
  int64_t n = 0;
  for (const auto& [_, c] : limit_kills) n += c;
  return n;
}

std::map<std::string, double> Tally::AsMetrics() const {
  std::map<std::string, double> m;
  for (const auto& [name, c] : outcomes) m[name] = static_cast<double>(c);
  m["limit_kills"] = static_cast<double>(total_limit_kills());
  return m;
}

std::map<int, double> PassAtKByTask(const std::vector<rusteval::Verdict>& verdicts, const std::vector<int>& ks) {
  std::map<std::string, std::pair<int, int>> by_task;  // n, c
  for (const auto& v : verdicts) {
    auto& [n, c] = by_task[v.task_id];
    ++n;
    c += v.passed;
  }
  std::map<int, double> out;
  for (int k : ks) {
    std::vector<std::pair<int, int>> problems;
    for (const auto& [_, nc] : by_task) {
      if (nc.first >= k) problems.push_back(nc);
    }
    if (problems.empty()) continue;
    if (auto p = rusteval::MeanPassAtK(problems, k); p.ok()) out[k] = *p;
  }
  return out;
}

std::string DumpJson(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json VerdictLine(size_t index, const rusteval::Verdict& v) {
  json j = rusteval::ToJson(v);
  j["index"] = index;
  j["outcome"] = OutcomeName(v);
  return j;
}

namespace {

json Abbreviated(size_t index, const rusteval::Verdict& v) {
  json j = {{"index", index}, {"task_id", v.task_id}, {"outcome", OutcomeName(v)}, {"passed", v.passed}};
  if (v.error_class != ErrorClass::kNone) j["error_class"] = ErrorClassName(v.error_class);
  if (!v.error_codes.empty()) j["error_codes"] = v.error_codes;
  if (v.limit != sandbox::Limit::kNone) j["limit"] = sandbox::LimitName(v.limit);
  if (v.tests_passed || v.tests_failed) j["tests"] = {v.tests_passed, v.tests_failed};
  return j;
}

}  // namespace

json SummariseResult(const EvalBatch& batch, const std::vector<rusteval::Verdict>& verdicts,
                     const ResultContext& context) {
  Tally tally;
  std::map<std::string, int> tasks;
  for (const auto& v : verdicts) {
    tally.Add(v);
    ++tasks[v.task_id];
  }
  json r;
  r["samples_source"] = batch.samples_source;
  if (!batch.note.empty()) r["note"] = batch.note;
  if (!batch.benchmark.empty()) {
    r["benchmark"] = batch.benchmark;
    r["benchmark_tasks"] = batch.benchmark_tasks;
  }
  r["samples"] = verdicts.size();
  r["tasks"] = tasks.size();
  r["counts"] = tally.outcomes;
  r["error_classes"] = tally.error_classes;
  r["limit_kills"] = tally.limit_kills;
  json pass = json::object();
  for (const auto& [k, p] : PassAtKByTask(verdicts, batch.pass_at_k)) pass[absl::StrCat(k)] = p;
  r["pass_at_k"] = pass;
  r["pass_rate"] = verdicts.empty() ? 0.0 : static_cast<double>(tally.outcome("passed")) / verdicts.size();
  r["lints"] = tally.lints;
  r["stage_ms"] = {{"check", tally.check_ms}, {"build_tests", tally.build_ms}, {"run_tests", tally.run_ms}};
  r["seconds"] = context.seconds;
  r["samples_per_second"] = context.seconds > 0 ? verdicts.size() / context.seconds : 0.0;
  if (!context.worker_id.empty()) r["worker"] = context.worker_id;
  if (context.parallelism > 0) r["parallelism"] = context.parallelism;
  if (!context.verdicts_file.empty()) r["verdicts_file"] = context.verdicts_file;

  // Room for the verdicts: the budget less the summary and the bookkeeping keys added below.
  const size_t overhead = DumpJson(r).size() + 160;
  size_t budget = context.max_bytes > overhead ? context.max_bytes - overhead : 0;
  json list = json::array();
  size_t full = 0, abbreviated = 0;
  for (size_t i = 0; i < verdicts.size(); ++i) {
    json v = VerdictLine(i, verdicts[i]);
    size_t size = DumpJson(v).size() + 1;
    if (abbreviated == 0 && size <= budget) {
      ++full;
    } else {
      v = Abbreviated(i, verdicts[i]);
      size = DumpJson(v).size() + 1;
      if (size > budget) break;
      ++abbreviated;
    }
    budget -= size;
    list.push_back(std::move(v));
  }
  r["verdicts"] = std::move(list);
  r["verdicts_included"] = full + abbreviated;
  r["verdicts_abbreviated"] = abbreviated;
  r["verdicts_truncated"] = full + abbreviated < verdicts.size();
  return r;
}

}  // namespace temper::evalworker
