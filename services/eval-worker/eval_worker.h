// EvalWorker: the eval worker's job loop. Leases eval jobs from the coordinator, evaluates each
// job's samples in parallel sandboxes, streams progress, and completes the job with a summary
// (or fails it with a failure class). Heartbeats run on a LeaseKeeper; a cancelled or lost lease
// stops the job without a report. One job at a time; Run is called from one thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>

#include "libs/rpc/worker_client.h"
#include "services/eval-worker/batch.h"
#include "services/eval-worker/benchmarks.h"
#include "services/eval-worker/runner.h"
#include "services/eval-worker/worker_metrics.h"

namespace temper::evalworker {

// Builds the evaluation function for a batch (its limits applied). The returned function owns
// whatever it needs.
using EvaluatorFactory = std::function<EvaluateFn(const EvalBatch& batch)>;

struct EvalWorkerOptions {
  int parallelism = 1;  // sandboxes at once
  std::string out_dir;  // full JSONL verdicts go to <out_dir>/job-<id>.jsonl when set
  std::chrono::milliseconds progress_interval{2000};
  std::chrono::milliseconds acquire_wait{2000};  // long-poll; also how soon a drain is noticed when idle
  PayloadOptions payload;
  size_t max_result_bytes = 1'000'000;
};

class EvalWorker {
 public:
  // `client` must be registered; `client`, `benchmarks` and `metrics` (may be null) outlive this.
  EvalWorker(WorkerClient* client, BenchmarkLibrary* benchmarks, EvaluatorFactory factory,
             EvalWorkerMetrics* metrics, EvalWorkerOptions options);

  // Leases and runs jobs until `drain` is set (finishing the job in hand first) or `abort` is set
  // (which also stops the job in hand, unreported: its lease expires and it is retried).
  void Run(const std::atomic<bool>& drain, const std::atomic<bool>& abort);

  // Runs one leased job to its end: Complete, Fail, or nothing when it was stopped.
  void RunJob(const v1::Job& job, const std::atomic<bool>& abort);

 private:
  WorkerClient* const client_;
  BenchmarkLibrary* const benchmarks_;
  const EvaluatorFactory factory_;
  EvalWorkerMetrics* const metrics_;
  const EvalWorkerOptions options_;
  LeaseKeeper keeper_;
  std::atomic<int64_t> current_job_{0};
  std::atomic<bool> job_stopped_{false};  // the coordinator said stop (cancelled or lost)
};

}  // namespace temper::evalworker
