// Summaries of a batch's verdicts: per-class counts, limit kills, pass@k, and the result JSON an
// eval job completes with (kept under the coordinator's 1 MiB limit). Plain data; not thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "libs/rusteval/task.h"
#include "libs/rusteval/verdict.h"
#include "nlohmann/json.hpp"
#include "services/eval-worker/batch.h"

namespace temper::evalworker {

// The coarse class of a verdict: passed, compile_error, test_failed, timeout, resource_limit,
// no_code, other. Every verdict has exactly one.
std::string_view OutcomeName(const rusteval::Verdict& v);
const std::vector<std::string_view>& OutcomeNames();

// Running counts over verdicts.
struct Tally {
  size_t samples = 0;
  std::map<std::string, int64_t> outcomes;      // OutcomeName → count (every name present)
  std::map<std::string, int64_t> error_classes; // rusteval::ErrorClassName → count (failures only)
  std::map<std::string, int64_t> limit_kills;   // sandbox::LimitName → count
  std::map<std::string, int64_t> lints;         // lint name → total count
  int64_t check_ms = 0, build_ms = 0, run_ms = 0;

  Tally();
  void Add(const rusteval::Verdict& v);
  int64_t outcome(std::string_view name) const;
  int64_t total_limit_kills() const;
  // The counts as ReportProgress metrics: one per outcome, plus "limit_kills".
  std::map<std::string, double> AsMetrics() const;
};

// pass@k for each k over the tasks with at least k samples (grouped by task id), with the
// unbiased estimator. A k that no task has enough samples for is left out.
std::map<int, double> PassAtKByTask(const std::vector<rusteval::Verdict>& verdicts, const std::vector<int>& ks);

struct ResultContext {
  std::string worker_id;
  int parallelism = 0;
  double seconds = 0;                  // wall time of the batch
  std::string verdicts_file;           // where the full JSONL went, if anywhere
  size_t max_bytes = 1'000'000;        // the serialised result stays under this
};

// The result JSON of a finished batch: the summary, then as many verdicts as fit in
// `max_bytes` — in full, then abbreviated ({index, task_id, outcome, error_class, ...}), then none,
// with "verdicts_included" / "verdicts_abbreviated" / "verdicts_truncated" saying which happened.
// `verdicts[i]` belongs to `batch.samples[i]`.
nlohmann::json SummariseResult(const EvalBatch& batch, const std::vector<rusteval::Verdict>& verdicts,
                               const ResultContext& context);

// `j` serialised as the result is stored (invalid UTF-8 replaced, never a throw).
std::string DumpJson(const nlohmann::json& j);

// One line of the full-verdict JSONL: rusteval::ToJson plus "index" and "outcome".
nlohmann::json VerdictLine(size_t index, const rusteval::Verdict& v);

}  // namespace temper::evalworker
