// RunSamples: evaluates a batch's samples on a pool of threads, one sandboxed evaluation per thread
// at a time, stopping early on request or at the first infrastructure failure.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <vector>

#include "libs/common/status.h"
#include "libs/rusteval/task.h"
#include "libs/rusteval/verdict.h"

namespace temper::evalworker {

// The seam between the batch logic and the real evaluator: rusteval::Evaluator::Evaluate in
// production, a fake in tests. Must be safe to call from many threads at once.
using EvaluateFn = std::function<absl::StatusOr<rusteval::Verdict>(const rusteval::Sample&)>;

struct RunOptions {
  int parallelism = 1;
  // When set (by anyone, at any time), no further sample is started; those running finish.
  const std::atomic<bool>* stop = nullptr;
  // Called once per finished sample, in completion order, never concurrently with itself.
  std::function<void(size_t index, const rusteval::Verdict&)> on_verdict;
};

struct RunOutcome {
  std::vector<std::optional<rusteval::Verdict>> verdicts;  // by sample index; empty where not run
  size_t done = 0;
  bool stopped = false;          // `stop` was set before every sample had run
  absl::Status infrastructure;   // the first error an evaluation returned (then the rest are skipped)
  bool complete() const { return done == verdicts.size() && infrastructure.ok(); }
};

RunOutcome RunSamples(const std::vector<rusteval::Sample>& samples, const EvaluateFn& evaluate,
                      const RunOptions& options);

}  // namespace temper::evalworker
