#include "services/coordinator/coordinator.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "libs/store/migrations.h"
#include "libs/store/pg_store.h"
#include "spdlog/spdlog.h"

namespace temper {

Coordinator::Coordinator(CoordinatorOptions options) : options_(std::move(options)) {}

Coordinator::~Coordinator() { Shutdown(); }

absl::Status Coordinator::Start() {
  std::string conninfo = options_.database_url;
  if (conninfo.empty()) {
    if (options_.data_dir.empty()) return absl::InvalidArgumentError("--data-dir is required without --database-url");
    embedded_ = std::make_unique<EmbeddedPostgres>(options_.data_dir + "/postgres");
    RETURN_IF_ERROR(embedded_->Start());
    conninfo = embedded_->conninfo();
    spdlog::info("embedded PostgreSQL running in {}/postgres", options_.data_dir);
  }
  // The database may still be starting (or restarting): keep trying for a while.
  absl::Status migrated;
  for (int i = 0; i < 60; ++i) {
    migrated = ApplyMigrations(conninfo);
    if (migrated.ok() || migrated.code() != absl::StatusCode::kUnavailable) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  RETURN_IF_ERROR(migrated);
  ASSIGN_OR_RETURN(store_, OpenPgStore(conninfo, options_.pool_size));

  registry_ = std::make_shared<prometheus::Registry>();
  metrics_ = std::make_unique<CoordinatorMetrics>(*registry_);
  if (!options_.metrics_listen.empty()) {
    ASSIGN_OR_RETURN(exposer_, ServeMetrics(options_.metrics_listen, registry_));
    auto ports = exposer_->GetListeningPorts();
    metrics_address_ = absl::StrCat(options_.metrics_listen.substr(0, options_.metrics_listen.rfind(':')), ":",
                                    ports.empty() ? 0 : ports[0]);
  }

  scheduler_ = std::make_unique<Scheduler>(store_.get(), SystemClock::Default(), metrics_.get(), options_.scheduler);
  runs_ = std::make_unique<RunManager>(store_.get(), SystemClock::Default(), scheduler_.get());
  scheduler_->SetJobListener([this](const Job& job) { runs_->MarkDirty(job.run_id); });
  RETURN_IF_ERROR(runs_->ReconcileAll());
  scheduler_->StartBackground();
  runs_->StartBackground();

  ServiceDeps deps{store_.get(), scheduler_.get(), runs_.get(), metrics_.get(), &stopping_};
  run_service_ = std::make_unique<RunServiceImpl>(deps);
  worker_service_ = std::make_unique<WorkerServiceImpl>(deps);
  checkpoint_service_ = std::make_unique<CheckpointServiceImpl>(deps);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options_.listen, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options_.max_message_bytes));
  builder.RegisterService(run_service_.get());
  builder.RegisterService(worker_service_.get());
  builder.RegisterService(checkpoint_service_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.listen));
  address_ = absl::StrCat(options_.listen.substr(0, options_.listen.rfind(':')), ":", port);
  gauges_ = std::thread([this] {
    while (!stopping_.load()) {
      RefreshGauges();
      for (int i = 0; i < 20 && !stopping_.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  });
  spdlog::info("coordinator listening on {} (metrics {})", address_, metrics_address_.empty() ? "off" : metrics_address_);
  return absl::OkStatus();
}

void Coordinator::RefreshGauges() {
  if (auto counts = store_->jobs().CountJobs(); counts.ok()) {
    for (JobKind k : {JobKind::kTrain, JobKind::kGenerate, JobKind::kEval}) {
      for (int s = 1; s <= 6; ++s) {
        auto state = static_cast<JobState>(s);
        auto it = counts->find({k, state});
        metrics_->jobs.Add({{"kind", ToString(k)}, {"state", ToString(state)}})
            .Set(it == counts->end() ? 0 : static_cast<double>(it->second));
      }
    }
  }
  if (auto workers = store_->workers().ListWorkers(); workers.ok()) {
    std::map<std::string, int> by_state = {{"idle", 0}, {"busy", 0}, {"lost", 0}};
    for (const auto& w : *workers) ++by_state[w.state];
    for (const auto& [state, n] : by_state) metrics_->workers.Add({{"state", state}}).Set(n);
  }
}

void Coordinator::Shutdown() {
  if (stopping_.exchange(true)) return;
  spdlog::info("coordinator shutting down");
  if (scheduler_) scheduler_->Shutdown();  // answers waiting long polls so the server can drain
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (runs_) runs_->Shutdown();
  if (gauges_.joinable()) gauges_.join();
  exposer_.reset();
  store_.reset();
  if (embedded_) {
    if (auto s = embedded_->Stop(); !s.ok()) spdlog::warn("embedded PostgreSQL: {}", s.ToString());
  }
}

}  // namespace temper
