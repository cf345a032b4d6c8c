// Prometheus wiring: a registry, its /metrics exposer, and the coordinator's metric families.
// prometheus-cpp metrics are thread-safe; so is everything here.
#pragma once

#include <memory>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "libs/common/status.h"

namespace temper {

// Serves `registry` at http://<bind>/metrics. Fails when the address cannot be bound.
absl::StatusOr<std::unique_ptr<prometheus::Exposer>> ServeMetrics(
    const std::string& bind, const std::shared_ptr<prometheus::Registry>& registry);

// Histogram buckets in seconds from 100 µs to ~100 s, doubling.
prometheus::Histogram::BucketBoundaries LatencyBuckets();

// The coordinator's metrics. Gauges "by state" are set from the store by a periodic refresher.
struct CoordinatorMetrics {
  explicit CoordinatorMetrics(prometheus::Registry& registry);

  prometheus::Family<prometheus::Gauge>& jobs;              // labels kind, state
  prometheus::Family<prometheus::Gauge>& workers;           // label state
  prometheus::Histogram& acquire_latency;                   // seconds an AcquireJob waited
  prometheus::Family<prometheus::Histogram>& job_duration;  // label kind; first heartbeat to completion, seconds
  prometheus::Counter& lease_expiries;
  prometheus::Family<prometheus::Counter>& failures;        // label class
  prometheus::Family<prometheus::Counter>& rpcs;            // labels method, code
  prometheus::Family<prometheus::Histogram>& rpc_latency;   // label method
  prometheus::Counter& jobs_dispatched;
};

}  // namespace temper
