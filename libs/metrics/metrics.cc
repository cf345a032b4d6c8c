#include "libs/metrics/metrics.h"

#include "absl/strings/str_cat.h"

namespace temper {

absl::StatusOr<std::unique_ptr<prometheus::Exposer>> ServeMetrics(
    const std::string& bind, const std::shared_ptr<prometheus::Registry>& registry) {
  try {
    auto exposer = std::make_unique<prometheus::Exposer>(bind);
    exposer->RegisterCollectable(registry);
    return exposer;
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot serve /metrics on ", bind, ": ", e.what()));
  }
}

prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  prometheus::Histogram::BucketBoundaries b;
  for (double v = 0.0001; v < 120; v *= 2) b.push_back(v);
  return b;
}

CoordinatorMetrics::CoordinatorMetrics(prometheus::Registry& r)
    : jobs(prometheus::BuildGauge().Name("temper_jobs").Help("Jobs by kind and state").Register(r)),
      workers(prometheus::BuildGauge().Name("temper_workers").Help("Workers by state").Register(r)),
      acquire_latency(prometheus::BuildHistogram()
                          .Name("temper_acquire_latency_seconds")
                          .Help("Time from an AcquireJob call to its answer (job or timeout)")
                          .Register(r)
                          .Add({}, LatencyBuckets())),
      job_duration(prometheus::BuildHistogram()
                       .Name("temper_job_duration_seconds")
                       .Help("Time from a job's first heartbeat to its completion")
                       .Register(r)),
      lease_expiries(prometheus::BuildCounter()
                         .Name("temper_lease_expiries_total")
                         .Help("Leases that expired without a heartbeat")
                         .Register(r)
                         .Add({})),
      failures(prometheus::BuildCounter()
                   .Name("temper_job_failures_total")
                   .Help("Failed job attempts by failure class")
                   .Register(r)),
      rpcs(prometheus::BuildCounter().Name("temper_rpcs_total").Help("RPCs by method and code").Register(r)),
      rpc_latency(prometheus::BuildHistogram()
                      .Name("temper_rpc_latency_seconds")
                      .Help("RPC handling latency by method")
                      .Register(r)),
      jobs_dispatched(prometheus::BuildCounter()
                          .Name("temper_jobs_dispatched_total")
                          .Help("Leases granted")
                          .Register(r)
                          .Add({})) {}

}  // namespace temper
