// EvalBatch: what one eval job asks for, parsed from the job's payload_json (format in
// docs/eval-worker.md). Plain data and pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "libs/common/status.h"
#include "libs/rusteval/evaluator.h"
#include "libs/rusteval/task.h"
#include "nlohmann/json.hpp"
#include "services/eval-worker/benchmarks.h"

namespace temper::evalworker {

// Where a batch's samples came from, as reported in the result's "samples_source".
inline constexpr char kSourcePayload[] = "payload";                        // the job named them
inline constexpr char kSourceReferences[] = "reference_solutions";         // the benchmark's own answers
inline constexpr char kSourceNone[] = "none";                              // nothing to evaluate

struct EvalBatch {
  std::string benchmark;       // the default benchmark of the batch's task ids ("" if none)
  std::string samples_source = kSourcePayload;
  std::string note;            // said in the result, e.g. why reference solutions were used
  std::vector<rusteval::Sample> samples;
  std::vector<int> pass_at_k = {1};
  std::optional<int> timeout_seconds;  // per test run (wall and CPU); default: the evaluator's
  std::optional<int> memory_mb;        // per test run
  int parallelism = 0;                 // the job's cap on sandboxes at once; 0: the worker's own
  size_t benchmark_tasks = 0;          // tasks in the benchmark, when one was named
};

struct PayloadOptions {
  // Reference mode (a run's eval stage without samples): evaluate at most this many tasks; 0: all.
  int reference_limit = 0;
};

// Parses an eval job's payload. InvalidArgument (the job is wrong: not retried) for malformed
// JSON, unknown benchmarks or task ids, bad field types; FailedPrecondition (this worker cannot
// serve it: retried elsewhere) when a benchmark file is missing here.
absl::StatusOr<EvalBatch> ParseEvalPayload(std::string_view payload_json, BenchmarkLibrary& benchmarks,
                                           const PayloadOptions& options = {});

// One sample from its JSON form: {"task_id", "completion", "format"?} looked up in `benchmark`
// (or the benchmark "format" names), or {"program", "id"?, "tests"?}. With `extract`, the
// completion is model output and goes through rusteval::ExtractCode first. `index` names
// program samples without an id. InvalidArgument on a malformed sample.
absl::StatusOr<rusteval::Sample> SampleFromJson(const nlohmann::json& j, size_t index,
                                                const std::string& default_benchmark,
                                                BenchmarkLibrary& benchmarks, bool extract);

// The benchmark's reference solutions as samples, the first `limit` tasks (0: all) that have one.
std::vector<rusteval::Sample> ReferenceSamples(const Benchmark& benchmark, int limit);

// The evaluator options a batch asks for: the defaults with its run limits applied.
rusteval::EvaluatorOptions EvaluatorOptionsFor(const EvalBatch& batch);

}  // namespace temper::evalworker
