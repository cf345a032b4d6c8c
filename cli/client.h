// The coordinator as the `temper` CLI sees it: the calls the commands make, behind a small
// interface so commands are tested against a fake, and one gRPC implementation.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "temper/v1/checkpoint.pb.h"
#include "temper/v1/run.pb.h"

namespace temper::cli {

// The coordinator's RunService and CheckpointService, one method per RPC the CLI uses.
// Errors the server returns keep their code and message. Implementations need not be
// thread-safe: the CLI makes one call at a time.
class CoordinatorClient {
 public:
  virtual ~CoordinatorClient() = default;

  virtual absl::StatusOr<v1::Run> SubmitRun(const v1::SubmitRunRequest& req) = 0;
  virtual absl::StatusOr<v1::Run> GetRun(int64_t id) = 0;
  virtual absl::StatusOr<v1::ListRunsResponse> ListRuns(const v1::ListRunsRequest& req) = 0;
  virtual absl::StatusOr<v1::Run> CancelRun(const v1::CancelRunRequest& req) = 0;
  // Follows WatchRun from after `after_event_id`, calling `on_event` for each event in order,
  // until the server ends the stream (OK: the run reached a terminal state or the server is
  // stopping) or the stream breaks (the error; UNAVAILABLE when the connection was lost).
  virtual absl::Status WatchRun(int64_t id, int64_t after_event_id,
                                const std::function<void(const v1::RunEvent&)>& on_event) = 0;
  virtual absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& req) = 0;
  virtual absl::StatusOr<v1::ListWorkersResponse> ListWorkers() = 0;
  virtual absl::StatusOr<v1::ListCheckpointsResponse> ListCheckpoints(int64_t run_id) = 0;
  virtual absl::StatusOr<v1::GetLineageResponse> GetLineage(int64_t checkpoint_id) = 0;
};

// A client over gRPC to `address` (host:port). The channel connects lazily, on the first call:
// creating a client sends nothing. Unary calls carry `deadline`; WatchRun has none. When the
// coordinator cannot be reached the error is UNAVAILABLE (or DEADLINE_EXCEEDED) with the message
// "cannot reach the coordinator at <address>: <detail>"; UNIMPLEMENTED (not a coordinator, or
// one too old) names the address too.
std::unique_ptr<CoordinatorClient> NewGrpcCoordinatorClient(const std::string& address,
                                                            std::chrono::milliseconds deadline);

}  // namespace temper::cli
