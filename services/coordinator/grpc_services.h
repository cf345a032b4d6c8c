// Thin gRPC adapters over the scheduler and the run manager: validate the request's shape,
// convert protos at the edge, count and time each call. No business logic lives here.
// Thread-safe (gRPC calls them from many threads).
#pragma once

#include <memory>

#include "libs/metrics/metrics.h"
#include "libs/store/store.h"
#include "services/coordinator/run_manager.h"
#include "services/coordinator/scheduler.h"
#include "temper/v1/checkpoint.grpc.pb.h"
#include "temper/v1/run.grpc.pb.h"
#include "temper/v1/worker.grpc.pb.h"

namespace temper {

// What every service needs; all pointers outlive the services.
struct ServiceDeps {
  Store* store;
  Scheduler* scheduler;
  RunManager* runs;
  CoordinatorMetrics* metrics;  // may be null
  std::atomic<bool>* stopping;  // set at shutdown: long streams end
};

class RunServiceImpl final : public v1::RunService::Service {
 public:
  explicit RunServiceImpl(ServiceDeps deps) : d_(deps) {}
  grpc::Status SubmitRun(grpc::ServerContext*, const v1::SubmitRunRequest*, v1::SubmitRunResponse*) override;
  grpc::Status GetRun(grpc::ServerContext*, const v1::GetRunRequest*, v1::Run*) override;
  grpc::Status ListRuns(grpc::ServerContext*, const v1::ListRunsRequest*, v1::ListRunsResponse*) override;
  grpc::Status CancelRun(grpc::ServerContext*, const v1::CancelRunRequest*, v1::Run*) override;
  grpc::Status WatchRun(grpc::ServerContext*, const v1::WatchRunRequest*, grpc::ServerWriter<v1::RunEvent>*) override;
  grpc::Status ListJobs(grpc::ServerContext*, const v1::ListJobsRequest*, v1::ListJobsResponse*) override;
  grpc::Status ListWorkers(grpc::ServerContext*, const v1::ListWorkersRequest*, v1::ListWorkersResponse*) override;

 private:
  ServiceDeps d_;
};

class WorkerServiceImpl final : public v1::WorkerService::Service {
 public:
  explicit WorkerServiceImpl(ServiceDeps deps) : d_(deps) {}
  grpc::Status RegisterWorker(grpc::ServerContext*, const v1::RegisterWorkerRequest*, v1::RegisterWorkerResponse*) override;
  grpc::Status AcquireJob(grpc::ServerContext*, const v1::AcquireJobRequest*, v1::AcquireJobResponse*) override;
  grpc::Status Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest*, v1::HeartbeatResponse*) override;
  grpc::Status ReportProgress(grpc::ServerContext*, const v1::ReportProgressRequest*, v1::ReportProgressResponse*) override;
  grpc::Status CompleteJob(grpc::ServerContext*, const v1::CompleteJobRequest*, v1::CompleteJobResponse*) override;
  grpc::Status FailJob(grpc::ServerContext*, const v1::FailJobRequest*, v1::FailJobResponse*) override;
  grpc::Status Rendezvous(grpc::ServerContext*, const v1::RendezvousRequest*, v1::RendezvousResponse*) override;

 private:
  ServiceDeps d_;
};

class CheckpointServiceImpl final : public v1::CheckpointService::Service {
 public:
  explicit CheckpointServiceImpl(ServiceDeps deps) : d_(deps) {}
  grpc::Status ListCheckpoints(grpc::ServerContext*, const v1::ListCheckpointsRequest*, v1::ListCheckpointsResponse*) override;
  grpc::Status GetLineage(grpc::ServerContext*, const v1::GetLineageRequest*, v1::GetLineageResponse*) override;

 private:
  ServiceDeps d_;
};

}  // namespace temper
