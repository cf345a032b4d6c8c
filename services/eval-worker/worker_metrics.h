// The eval worker's Prometheus metrics. prometheus-cpp metrics are thread-safe; so is this.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "libs/rusteval/verdict.h"

namespace temper::evalworker {

struct EvalWorkerMetrics {
  explicit EvalWorkerMetrics(prometheus::Registry& registry);

  // Every evaluated sample: rate(temper_eval_samples_total[1m]) is samples/s.
  prometheus::Counter& samples;
  // Seconds in each stage (label stage: check, build_tests, run_tests, total).
  prometheus::Family<prometheus::Histogram>& stage_seconds;
  // Verdicts by outcome (passed, compile_error, ...) and fine error class (borrow, ..., none).
  prometheus::Family<prometheus::Counter>& verdicts;
  // Sandbox limits that killed a sample (label limit: wall_time, memory, pids, ...).
  prometheus::Family<prometheus::Counter>& limit_kills;
  // Jobs by how they ended (label outcome: completed, failed_user, failed_infrastructure, dropped).
  prometheus::Family<prometheus::Counter>& jobs;
  prometheus::Gauge& samples_in_flight;

  // Counts one verdict in samples, stage_seconds, verdicts and limit_kills.
  void Observe(const rusteval::Verdict& v);
};

}  // namespace temper::evalworker
