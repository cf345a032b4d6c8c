#include "cli/client.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "libs/common/status.h"
#include "temper/v1/checkpoint.grpc.pb.h"
#include "temper/v1/run.grpc.pb.h"

namespace temper::cli {
namespace {

class GrpcCoordinatorClient final : public CoordinatorClient {
 public:
  GrpcCoordinatorClient(std::string address, std::chrono::milliseconds deadline)
      : address_(std::move(address)),
        deadline_(deadline),
        channel_(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials())),
        runs_(v1::RunService::NewStub(channel_)),
        checkpoints_(v1::CheckpointService::NewStub(channel_)) {}

  absl::StatusOr<v1::Run> SubmitRun(const v1::SubmitRunRequest& req) override {
    v1::SubmitRunResponse resp;
    auto ctx = Context();
    RETURN_IF_ERROR(Convert(runs_->SubmitRun(ctx.get(), req, &resp)));
    return resp.run();
  }

  absl::StatusOr<v1::Run> GetRun(int64_t id) override {
    v1::GetRunRequest req;
    req.set_id(id);
    return Unary(&v1::RunService::Stub::GetRun, *runs_, req);
  }

  absl::StatusOr<v1::ListRunsResponse> ListRuns(const v1::ListRunsRequest& req) override {
    return Unary(&v1::RunService::Stub::ListRuns, *runs_, req);
  }

  absl::StatusOr<v1::Run> CancelRun(const v1::CancelRunRequest& req) override {
    return Unary(&v1::RunService::Stub::CancelRun, *runs_, req);
  }

  absl::Status WatchRun(int64_t id, int64_t after_event_id,
                        const std::function<void(const v1::RunEvent&)>& on_event) override {
    v1::WatchRunRequest req;
    req.set_id(id);
    req.set_after_event_id(after_event_id);
    grpc::ClientContext ctx;
    auto reader = runs_->WatchRun(&ctx, req);
    v1::RunEvent event;
    while (reader->Read(&event)) on_event(event);
    return Convert(reader->Finish());
  }

  absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& req) override {
    return Unary(&v1::RunService::Stub::ListJobs, *runs_, req);
  }

  absl::StatusOr<v1::ListWorkersResponse> ListWorkers() override {
    return Unary(&v1::RunService::Stub::ListWorkers, *runs_, v1::ListWorkersRequest());
  }

  absl::StatusOr<v1::ListCheckpointsResponse> ListCheckpoints(int64_t run_id) override {
    v1::ListCheckpointsRequest req;
    req.set_run_id(run_id);
    return Unary(&v1::CheckpointService::Stub::ListCheckpoints, *checkpoints_, req);
  }

  absl::StatusOr<v1::GetLineageResponse> GetLineage(int64_t checkpoint_id) override {
    v1::GetLineageRequest req;
    req.set_checkpoint_id(checkpoint_id);
    return Unary(&v1::CheckpointService::Stub::GetLineage, *checkpoints_, req);
  }

 private:
  std::unique_ptr<grpc::ClientContext> Context() const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + deadline_);
    return ctx;
  }

  template <typename Stub, typename Req, typename Resp>
  absl::StatusOr<Resp> Unary(grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*), Stub& stub,
                             const Req& req) {
    Resp resp;
    auto ctx = Context();
    RETURN_IF_ERROR(Convert((stub.*method)(ctx.get(), req, &resp)));
    return resp;
  }

  // The server's code and message, except that transport failures name the address.
  absl::Status Convert(const grpc::Status& s) const {
    if (s.ok()) return absl::OkStatus();
    auto code = static_cast<absl::StatusCode>(s.error_code());
    if (s.error_code() == grpc::StatusCode::UNAVAILABLE)
      return absl::Status(code, absl::StrCat("cannot reach the coordinator at ", address_, ": ", s.error_message()));
    if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
      return absl::Status(code, absl::StrCat("cannot reach the coordinator at ", address_, ": no answer within ",
                                             deadline_.count() / 1000.0, " s"));
    if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED)
      return absl::Status(code, absl::StrCat("the server at ", address_, " does not implement this call (is it a ",
                                             "temper coordinator of a matching version?): ", s.error_message()));
    return absl::Status(code, s.error_message());
  }

  std::string address_;
  std::chrono::milliseconds deadline_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::RunService::Stub> runs_;
  std::unique_ptr<v1::CheckpointService::Stub> checkpoints_;
};

}  // namespace

std::unique_ptr<CoordinatorClient> NewGrpcCoordinatorClient(const std::string& address,
                                                            std::chrono::milliseconds deadline) {
  return std::make_unique<GrpcCoordinatorClient>(address, deadline);
}

}  // namespace temper::cli
