// Coordinator: the whole control-plane process — database (embedded or external), migrations,
// store, scheduler, run manager, gRPC server with health and reflection, and /metrics.
// Start() once, Shutdown() once (from any thread); used by main.cc and by end-to-end tests.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "libs/metrics/metrics.h"
#include "libs/store/embedded_pg.h"
#include "libs/store/store.h"
#include "services/coordinator/grpc_services.h"
#include "services/coordinator/run_manager.h"
#include "services/coordinator/scheduler.h"

namespace temper {

struct CoordinatorOptions {
  std::string listen = "127.0.0.1:7070";  // host:port; port 0 picks a free one (see address())
  std::string database_url;               // empty: the embedded PostgreSQL under data_dir
  std::string data_dir;                   // required for the embedded database
  std::string metrics_listen = "127.0.0.1:9464";  // empty: no /metrics endpoint
  int pool_size = 16;
  size_t max_message_bytes = 4 << 20;
  SchedulerOptions scheduler;
};

class Coordinator {
 public:
  explicit Coordinator(CoordinatorOptions options);
  ~Coordinator();

  // Brings everything up; on failure nothing keeps running.
  absl::Status Start();
  // Stops accepting calls, lets in-flight calls finish (long polls are answered "no job"), then
  // stops the background work and, if it owns it, the embedded database.
  void Shutdown();
  // The address the gRPC server listens on (with the port chosen when 0 was asked for).
  const std::string& address() const { return address_; }
  const std::string& metrics_address() const { return metrics_address_; }
  Store* store() { return store_.get(); }

 private:
  void RefreshGauges();

  CoordinatorOptions options_;
  std::unique_ptr<EmbeddedPostgres> embedded_;
  std::unique_ptr<Store> store_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<CoordinatorMetrics> metrics_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<RunManager> runs_;
  std::unique_ptr<RunServiceImpl> run_service_;
  std::unique_ptr<WorkerServiceImpl> worker_service_;
  std::unique_ptr<CheckpointServiceImpl> checkpoint_service_;
  std::unique_ptr<grpc::Server> server_;
  std::atomic<bool> stopping_{false};
  std::thread gauges_;
  std::string address_;
  std::string metrics_address_;
};

}  // namespace temper
