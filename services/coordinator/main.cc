// temper-coordinator: the control plane. Flags override environment variables (TEMPER_*).
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "CLI/CLI.hpp"
#include "libs/common/log.h"
#include "services/coordinator/coordinator.h"

namespace {

std::string Env(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

std::string DefaultDataDir() {
  if (geteuid() == 0) return "/var/lib/temper";
  std::string state = Env("XDG_STATE_HOME", Env("HOME", "/tmp") + "/.local/state");
  return state + "/temper";
}

}  // namespace

int main(int argc, char** argv) {
  temper::CoordinatorOptions o;
  o.listen = Env("TEMPER_LISTEN", o.listen);
  o.database_url = Env("TEMPER_DATABASE_URL", "");
  o.data_dir = Env("TEMPER_DATA_DIR", DefaultDataDir());
  o.metrics_listen = Env("TEMPER_METRICS_LISTEN", o.metrics_listen);
  double lease_s = 30, backoff_base_s = 1;
  std::string address_file;
  CLI::App app{"temper coordinator: runs, jobs, workers and checkpoints in PostgreSQL, served over gRPC"};
  app.add_option("--listen", o.listen, "gRPC listen address host:port (env TEMPER_LISTEN; port 0 picks one)");
  app.add_option("--database-url", o.database_url,
                 "PostgreSQL URL or libpq string (env TEMPER_DATABASE_URL); empty: embedded cluster in --data-dir");
  app.add_option("--data-dir", o.data_dir, "state directory (env TEMPER_DATA_DIR)");
  app.add_option("--metrics-listen", o.metrics_listen, "Prometheus /metrics address, empty for none (env TEMPER_METRICS_LISTEN)");
  app.add_option("--pool-size", o.pool_size, "database connections")->check(CLI::Range(1, 200));
  app.add_option("--lease-seconds", lease_s, "lease duration")->check(CLI::Range(0.1, 3600.0));
  app.add_option("--backoff-base-seconds", backoff_base_s, "first retry delay (doubles per attempt)")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--address-file", address_file, "write the bound gRPC address here once serving");
  CLI11_PARSE(app, argc, argv);
  o.scheduler.lease_duration = std::chrono::microseconds(static_cast<int64_t>(lease_s * 1e6));
  o.scheduler.heartbeat_interval = o.scheduler.lease_duration / 3;
  o.scheduler.worker_lost_after = o.scheduler.lease_duration * 3;
  o.scheduler.backoff_base = std::chrono::microseconds(static_cast<int64_t>(backoff_base_s * 1e6));
  temper::InitLogging("coordinator");

  // Signals are taken synchronously by this thread; every other thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  temper::Coordinator coordinator(o);
  if (auto s = coordinator.Start(); !s.ok()) {
    spdlog::critical("cannot start: {}", s.ToString());
    coordinator.Shutdown();
    return 1;
  }
  if (!address_file.empty()) {
    std::ofstream(address_file + ".tmp") << coordinator.address() << "\n";
    std::filesystem::rename(address_file + ".tmp", address_file);
  }
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received signal {}", sig);
  coordinator.Shutdown();
  return 0;
}
