#include "libs/rpc/worker_client.h"

#include "absl/strings/str_cat.h"
#include "libs/rpc/grpc_status.h"
#include "spdlog/spdlog.h"

namespace temper {
namespace {

constexpr std::chrono::milliseconds kUnaryDeadline(15000);

}  // namespace

WorkerClient::WorkerClient(std::shared_ptr<grpc::Channel> channel, v1::Worker identity,
                           std::chrono::milliseconds retry_for)
    : stub_(v1::WorkerService::NewStub(channel)), identity_(std::move(identity)), retry_for_(retry_for) {}

template <typename Req, typename Resp>
absl::Status WorkerClient::Call(grpc::Status (v1::WorkerService::Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                                const Req& req, Resp* resp, std::chrono::milliseconds deadline) {
  auto give_up = std::chrono::steady_clock::now() + retry_for_;
  std::chrono::milliseconds backoff(50);
  while (true) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    grpc::Status s = ((*stub_).*method)(&ctx, req, resp);
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE || std::chrono::steady_clock::now() + backoff > give_up)
      return FromGrpc(s);
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
  }
}

absl::Status WorkerClient::Register() {
  v1::RegisterWorkerRequest req;
  *req.mutable_worker() = identity_;
  v1::RegisterWorkerResponse resp;
  RETURN_IF_ERROR(Call(&v1::WorkerService::Stub::RegisterWorker, req, &resp, kUnaryDeadline));
  identity_.set_id(resp.worker_id());
  heartbeat_interval_ = std::chrono::milliseconds(std::max<int64_t>(50, resp.heartbeat_interval_ms()));
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::Job>> WorkerClient::Acquire(std::chrono::milliseconds wait) {
  v1::AcquireJobRequest req;
  req.set_worker_id(identity_.id());
  req.set_wait_ms(wait.count());
  v1::AcquireJobResponse resp;
  absl::Status s = Call(&v1::WorkerService::Stub::AcquireJob, req, &resp, wait + kUnaryDeadline);
  // A coordinator restarted from an empty database no longer knows us: register again.
  if (s.code() == absl::StatusCode::kNotFound) {
    RETURN_IF_ERROR(Register());
    req.set_worker_id(identity_.id());
    s = Call(&v1::WorkerService::Stub::AcquireJob, req, &resp, wait + kUnaryDeadline);
  }
  RETURN_IF_ERROR(s);
  if (!resp.has_job()) return std::nullopt;
  return resp.job();
}

absl::StatusOr<v1::HeartbeatResponse> WorkerClient::Heartbeat(const std::vector<v1::LeaseRef>& leases) {
  v1::HeartbeatRequest req;
  req.set_worker_id(identity_.id());
  for (const auto& l : leases) *req.add_leases() = l;
  v1::HeartbeatResponse resp;
  RETURN_IF_ERROR(Call(&v1::WorkerService::Stub::Heartbeat, req, &resp, kUnaryDeadline));
  return resp;
}

absl::StatusOr<bool> WorkerClient::ReportProgress(const v1::LeaseRef& lease, int64_t step,
                                                  const std::map<std::string, double>& metrics,
                                                  const std::string& message, double fraction) {
  v1::ReportProgressRequest req;
  *req.mutable_lease() = lease;
  req.set_step(step);
  for (const auto& [k, v] : metrics) (*req.mutable_metrics())[k] = v;
  req.set_message(message);
  req.set_fraction(fraction);
  v1::ReportProgressResponse resp;
  RETURN_IF_ERROR(Call(&v1::WorkerService::Stub::ReportProgress, req, &resp, kUnaryDeadline));
  return resp.cancel_requested();
}

absl::Status WorkerClient::Complete(const v1::LeaseRef& lease, const std::string& result_json,
                                    const std::optional<v1::CheckpointInfo>& checkpoint) {
  v1::CompleteJobRequest req;
  *req.mutable_lease() = lease;
  req.set_result_json(result_json);
  if (checkpoint) *req.mutable_checkpoint() = *checkpoint;
  v1::CompleteJobResponse resp;
  return Call(&v1::WorkerService::Stub::CompleteJob, req, &resp, kUnaryDeadline);
}

absl::StatusOr<bool> WorkerClient::Fail(const v1::LeaseRef& lease, v1::FailureClass failure_class,
                                        const std::string& error) {
  v1::FailJobRequest req;
  *req.mutable_lease() = lease;
  req.set_failure_class(failure_class);
  req.set_error(error);
  v1::FailJobResponse resp;
  RETURN_IF_ERROR(Call(&v1::WorkerService::Stub::FailJob, req, &resp, kUnaryDeadline));
  return resp.will_retry();
}

absl::StatusOr<v1::RendezvousResponse> WorkerClient::Rendezvous(const v1::LeaseRef& lease, const std::string& payload,
                                                                std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    v1::RendezvousRequest req;
    *req.mutable_lease() = lease;
    req.set_payload(payload);
    req.set_wait_ms(2000);
    v1::RendezvousResponse resp;
    RETURN_IF_ERROR(Call(&v1::WorkerService::Stub::Rendezvous, req, &resp, std::chrono::milliseconds(2000) + kUnaryDeadline));
    if (resp.ready()) return resp;
    if (std::chrono::steady_clock::now() >= deadline)
      return absl::DeadlineExceededError(absl::StrCat("gang of job ", lease.job_id(), " did not assemble in time"));
  }
}

LeaseKeeper::LeaseKeeper(WorkerClient* client, std::function<void(const v1::LeaseRef&, bool)> on_stop)
    : client_(client), on_stop_(std::move(on_stop)), thread_([this] { Loop(); }) {}

LeaseKeeper::~LeaseKeeper() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void LeaseKeeper::Add(const v1::LeaseRef& lease) {
  std::lock_guard lock(mu_);
  leases_[lease.job_id()] = lease;
}

void LeaseKeeper::Remove(const v1::LeaseRef& lease) {
  std::lock_guard lock(mu_);
  leases_.erase(lease.job_id());
}

void LeaseKeeper::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, client_->heartbeat_interval(), [&] { return stopping_; });
    if (stopping_) return;
    std::vector<v1::LeaseRef> leases;
    for (const auto& [id, l] : leases_) leases.push_back(l);
    lock.unlock();
    auto resp = client_->Heartbeat(leases);
    if (!resp.ok()) {
      spdlog::warn("heartbeat failed: {}", resp.status().ToString());
    } else {
      for (const auto& l : resp->cancelled()) on_stop_(l, true);
      for (const auto& l : resp->lost()) on_stop_(l, false);
    }
    lock.lock();
    if (resp.ok()) {
      for (const auto& l : resp->cancelled()) leases_.erase(l.job_id());
      for (const auto& l : resp->lost()) leases_.erase(l.job_id());
    }
  }
}

}  // namespace temper
