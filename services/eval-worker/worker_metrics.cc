#include "services/eval-worker/worker_metrics.h"

#include "libs/metrics/metrics.h"
#include "services/eval-worker/summary.h"

namespace temper::evalworker {

EvalWorkerMetrics::EvalWorkerMetrics(prometheus::Registry& r)
    : samples(prometheus::BuildCounter()
                  .Name("temper_eval_samples_total")
                  .Help("Samples evaluated")
                  .Register(r)
                  .Add({})),
      stage_seconds(prometheus::BuildHistogram()
                        .Name("temper_eval_stage_seconds")
                        .Help("Seconds per evaluation stage, sandbox set-up included")
                        .Register(r)),
      verdicts(prometheus::BuildCounter()
                   .Name("temper_eval_verdicts_total")
                   .Help("Verdicts by outcome and error class")
                   .Register(r)),
      limit_kills(prometheus::BuildCounter()
                      .Name("temper_eval_limit_kills_total")
                      .Help("Samples stopped by a sandbox limit, by limit")
                      .Register(r)),
      jobs(prometheus::BuildCounter().Name("temper_eval_jobs_total").Help("Eval jobs by how they ended").Register(r)),
      samples_in_flight(prometheus::BuildGauge()
                            .Name("temper_eval_samples_in_flight")
                            .Help("Samples being evaluated now")
                            .Register(r)
                            .Add({})) {
  for (const char* stage : {"check", "build_tests", "run_tests", "total"}) {
    stage_seconds.Add({{"stage", stage}}, LatencyBuckets());
  }
}

void EvalWorkerMetrics::Observe(const rusteval::Verdict& v) {
  samples.Increment();
  auto observe = [&](const char* stage, int64_t ms) {
    stage_seconds.Add({{"stage", stage}}, LatencyBuckets()).Observe(static_cast<double>(ms) / 1000.0);
  };
  if (v.stage_reached >= rusteval::Stage::kCheck) observe("check", v.check_ms);
  if (v.stage_reached >= rusteval::Stage::kBuildTests) observe("build_tests", v.build_ms);
  if (v.stage_reached >= rusteval::Stage::kRunTests) observe("run_tests", v.run_ms);
  observe("total", v.total_ms);
  verdicts
      .Add({{"outcome", std::string(OutcomeName(v))},
            {"class", v.passed ? std::string("none") : std::string(rusteval::ErrorClassName(v.error_class))}})
      .Increment();
  if (v.limit != sandbox::Limit::kNone) limit_kills.Add({{"limit", std::string(sandbox::LimitName(v.limit))}}).Increment();
}

}  // namespace temper::evalworker
