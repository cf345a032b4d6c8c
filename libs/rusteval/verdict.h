// Verdict: everything the evaluation of one sample found, with JSON (de)serialisation for the
// eval worker's reports and `temper eval`. Plain data.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "libs/common/status.h"
#include "libs/rusteval/diagnostics.h"
#include "libs/rusteval/syntax_metrics.h"
#include "libs/sandbox/sandbox.h"
#include "nlohmann/json.hpp"

namespace temper::rusteval {

// The furthest stage an evaluation got to (it may have failed there).
enum class Stage { kExtract, kCheck, kBuildTests, kRunTests };
std::string_view StageName(Stage s);

struct Verdict {
  std::string task_id;
  Stage stage_reached = Stage::kExtract;
  bool compiled = false;  // stage 1 (clippy check) passed
  bool passed = false;    // compiled, and every test passed (or the task has none)
  ErrorClass error_class = ErrorClass::kNone;
  std::vector<std::string> error_codes;  // E-codes of the compile errors, in order, deduplicated
  std::vector<Diagnostic> errors;        // the first few errors, host paths redacted
  std::map<std::string, int> lints;      // lint name → count (clippy::* and rustc lints)
  int tests_passed = 0;
  int tests_failed = 0;
  sandbox::Limit limit = sandbox::Limit::kNone;  // the sandbox limit that stopped it, if any
  std::optional<Stage> limit_stage;              // where that happened
  std::optional<SyntaxMetrics> syntax;
  std::string test_output;  // tail of the failing test run's output, redacted
  // Milliseconds spent in each stage, and in total (sandbox set-up included).
  int64_t check_ms = 0;
  int64_t build_ms = 0;
  int64_t run_ms = 0;
  int64_t total_ms = 0;
  std::optional<int64_t> run_peak_memory_bytes;
};

nlohmann::json ToJson(const Verdict& v);
// Inverse of ToJson; InvalidArgument if required fields are missing or mistyped.
absl::StatusOr<Verdict> VerdictFromJson(const nlohmann::json& j);

}  // namespace temper::rusteval
