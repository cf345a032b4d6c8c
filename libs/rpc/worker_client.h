// WorkerClient: the worker side of temper.v1.WorkerService, shared by every worker binary (eval,
// trainer, the simulated worker). Calls that find the coordinator unavailable are retried with
// backoff for up to `retry_for`, so workers ride out a coordinator restart. Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "libs/common/status.h"
#include "temper/v1/worker.grpc.pb.h"

namespace temper {

class WorkerClient {
 public:
  WorkerClient(std::shared_ptr<grpc::Channel> channel, v1::Worker identity,
               std::chrono::milliseconds retry_for = std::chrono::seconds(60));

  // Registers; afterwards worker_id() is the id the coordinator knows this worker by.
  absl::Status Register();
  const std::string& worker_id() const { return identity_.id(); }
  std::chrono::milliseconds heartbeat_interval() const { return heartbeat_interval_; }

  // Long-polls for a job for up to `wait`; nullopt when none came.
  absl::StatusOr<std::optional<v1::Job>> Acquire(std::chrono::milliseconds wait);
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const std::vector<v1::LeaseRef>& leases);
  // Returns whether the run asked to cancel.
  absl::StatusOr<bool> ReportProgress(const v1::LeaseRef& lease, int64_t step,
                                      const std::map<std::string, double>& metrics,
                                      const std::string& message, double fraction);
  // FailedPrecondition when the lease is stale (the job belongs to someone else now).
  absl::Status Complete(const v1::LeaseRef& lease, const std::string& result_json,
                        const std::optional<v1::CheckpointInfo>& checkpoint = std::nullopt);
  // Returns whether the coordinator will retry the job.
  absl::StatusOr<bool> Fail(const v1::LeaseRef& lease, v1::FailureClass failure_class, const std::string& error);
  // Waits (in long polls) until every rank of the gang holds its lease; rank 0 passes the payload.
  absl::StatusOr<v1::RendezvousResponse> Rendezvous(const v1::LeaseRef& lease, const std::string& payload,
                                                    std::chrono::milliseconds timeout);

 private:
  template <typename Req, typename Resp>
  absl::Status Call(grpc::Status (v1::WorkerService::Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                    const Req& req, Resp* resp, std::chrono::milliseconds deadline);

  std::unique_ptr<v1::WorkerService::Stub> stub_;
  v1::Worker identity_;
  std::chrono::milliseconds retry_for_;
  std::chrono::milliseconds heartbeat_interval_{10000};
};

// LeaseKeeper: heartbeats a set of held leases on a background thread and tells the owner when one
// is cancelled or lost. Thread-safe.
class LeaseKeeper {
 public:
  // `on_stop(lease, cancelled)`: called once per lease the coordinator told us to stop
  // (cancelled = the run was cancelled; false = the lease is stale or expired).
  LeaseKeeper(WorkerClient* client, std::function<void(const v1::LeaseRef&, bool)> on_stop);
  ~LeaseKeeper();
  void Add(const v1::LeaseRef& lease);
  void Remove(const v1::LeaseRef& lease);

 private:
  void Loop();
  WorkerClient* client_;
  std::function<void(const v1::LeaseRef&, bool)> on_stop_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, v1::LeaseRef> leases_;  // GUARDED_BY(mu_), by job id
  bool stopping_ = false;                   // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace temper
