#include "services/coordinator/grpc_services.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/common/strings.h"
#include "nlohmann/json.hpp"
#include "services/coordinator/convert.h"
#include "spdlog/spdlog.h"

namespace temper {
namespace {

constexpr size_t kMaxResultBytes = 1 << 20;
constexpr size_t kMaxErrorBytes = 8 << 10;

// Runs a handler: turns stray exceptions into INTERNAL and records the call's code and latency.
template <typename Fn>
grpc::Status Handle(CoordinatorMetrics* m, const char* method, Fn&& fn) {
  auto start = std::chrono::steady_clock::now();
  grpc::Status status;
  try {
    status = ToGrpc(fn());
  } catch (const std::exception& e) {
    spdlog::error("{}: unexpected exception: {}", method, e.what());
    status = grpc::Status(grpc::StatusCode::INTERNAL, absl::StrCat(method, ": internal error"));
  }
  if (m) {
    m->rpcs.Add({{"method", method}, {"code", std::to_string(status.error_code())}}).Increment();
    m->rpc_latency.Add({{"method", method}}, LatencyBuckets())
        .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return status;
}

absl::Status CheckText(const char* field, const std::string& value, size_t max_bytes) {
  if (value.size() > max_bytes)
    return absl::InvalidArgumentError(absl::StrCat(field, " longer than ", max_bytes, " bytes"));
  if (!IsValidUtf8(value)) return absl::InvalidArgumentError(absl::StrCat(field, " is not valid UTF-8"));
  return absl::OkStatus();
}

absl::Status CheckWorkerId(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("worker_id is required");
  return CheckText("worker_id", id, 128);
}


}  // namespace

grpc::Status RunServiceImpl::SubmitRun(grpc::ServerContext*, const v1::SubmitRunRequest* req,
                                       v1::SubmitRunResponse* resp) {
  return Handle(d_.metrics, "SubmitRun", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(Run run, d_.runs->Submit(req->config(), req->idempotency_key()));
    *resp->mutable_run() = temper::ToProto(run);
    spdlog::info("run {} ({}) submitted", run.id, run.name);
    return absl::OkStatus();
  });
}

grpc::Status RunServiceImpl::GetRun(grpc::ServerContext*, const v1::GetRunRequest* req, v1::Run* resp) {
  return Handle(d_.metrics, "GetRun", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(Run run, d_.store->runs().GetRun(req->id()));
    *resp = temper::ToProto(run);
    return absl::OkStatus();
  });
}

grpc::Status RunServiceImpl::ListRuns(grpc::ServerContext*, const v1::ListRunsRequest* req,
                                      v1::ListRunsResponse* resp) {
  return Handle(d_.metrics, "ListRuns", [&]() -> absl::Status {
    RunFilter f;
    f.limit = req->page_size() == 0 ? 50 : req->page_size();
    if (f.limit < 1 || f.limit > 1000) return absl::InvalidArgumentError("page_size must be 1..1000");
    RETURN_IF_ERROR(CheckText("name_prefix", req->name_prefix(), 128));
    f.name_prefix = req->name_prefix();
    for (int s : req->states()) {
      if (s < 1 || s > 5) return absl::InvalidArgumentError(absl::StrCat("unknown run state ", s));
      f.states.push_back(static_cast<RunState>(s));
    }
    if (!req->page_token().empty() &&
        (!absl::SimpleAtoi(req->page_token(), &f.before_id) || f.before_id <= 0))
      return absl::InvalidArgumentError("page_token is not one this server issued");
    ASSIGN_OR_RETURN(auto runs, d_.store->runs().ListRuns(f));
    for (const auto& r : runs) *resp->add_runs() = temper::ToProto(r);
    if (static_cast<int32_t>(runs.size()) == f.limit) resp->set_next_page_token(std::to_string(runs.back().id));
    return absl::OkStatus();
  });
}

grpc::Status RunServiceImpl::CancelRun(grpc::ServerContext*, const v1::CancelRunRequest* req, v1::Run* resp) {
  return Handle(d_.metrics, "CancelRun", [&]() -> absl::Status {
    RETURN_IF_ERROR(CheckText("reason", req->reason(), 1024));
    ASSIGN_OR_RETURN(Run run, d_.runs->Cancel(req->id(), req->reason()));
    *resp = temper::ToProto(run);
    return absl::OkStatus();
  });
}

grpc::Status RunServiceImpl::WatchRun(grpc::ServerContext* ctx, const v1::WatchRunRequest* req,
                                      grpc::ServerWriter<v1::RunEvent>* writer) {
  return Handle(d_.metrics, "WatchRun", [&]() -> absl::Status {
    int64_t after = req->after_event_id();
    while (!ctx->IsCancelled() && !d_.stopping->load()) {
      // Read the run's state first: events written before a terminal state are then all seen.
      ASSIGN_OR_RETURN(Run run, d_.store->runs().GetRun(req->id()));
      ASSIGN_OR_RETURN(auto events, d_.store->runs().ListEvents(req->id(), after, 500));
      for (const auto& e : events) {
        if (!writer->Write(temper::ToProto(e))) return absl::OkStatus();  // the client went away
        after = e.id;
      }
      if (events.size() < 500) {
        if (IsTerminal(run.state)) return absl::OkStatus();
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
    return absl::OkStatus();
  });
}

grpc::Status RunServiceImpl::ListJobs(grpc::ServerContext*, const v1::ListJobsRequest* req,
                                      v1::ListJobsResponse* resp) {
  return Handle(d_.metrics, "ListJobs", [&]() -> absl::Status {
    JobFilter f;
    f.run_id = req->run_id();
    f.limit = req->limit() == 0 ? 100 : req->limit();
    if (f.limit < 1 || f.limit > 10000) return absl::InvalidArgumentError("limit must be 1..10000");
    for (int s : req->states()) {
      if (s < 1 || s > 6) return absl::InvalidArgumentError(absl::StrCat("unknown job state ", s));
      f.states.push_back(static_cast<JobState>(s));
    }
    ASSIGN_OR_RETURN(auto jobs, d_.store->jobs().ListJobs(f));
    for (const auto& j : jobs) *resp->add_jobs() = temper::ToProto(j);
    return absl::OkStatus();
  });
}

grpc::Status RunServiceImpl::ListWorkers(grpc::ServerContext*, const v1::ListWorkersRequest*,
                                         v1::ListWorkersResponse* resp) {
  return Handle(d_.metrics, "ListWorkers", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto workers, d_.store->workers().ListWorkers());
    for (const auto& w : workers) *resp->add_workers() = temper::ToProto(w);
    return absl::OkStatus();
  });
}

grpc::Status WorkerServiceImpl::RegisterWorker(grpc::ServerContext*, const v1::RegisterWorkerRequest* req,
                                               v1::RegisterWorkerResponse* resp) {
  return Handle(d_.metrics, "RegisterWorker", [&]() -> absl::Status {
    RETURN_IF_ERROR(CheckText("worker.id", req->worker().id(), 128));
    RETURN_IF_ERROR(CheckText("worker.hostname", req->worker().hostname(), 256));
    for (const auto& m : req->worker().gpu_models()) RETURN_IF_ERROR(CheckText("worker.gpu_models", m, 256));
    ASSIGN_OR_RETURN(Worker w, d_.scheduler->RegisterWorker(temper::FromProto(req->worker())));
    resp->set_worker_id(w.id);
    const auto& o = d_.scheduler->options();
    resp->set_heartbeat_interval_ms(std::chrono::duration_cast<std::chrono::milliseconds>(o.heartbeat_interval).count());
    resp->set_lease_duration_ms(std::chrono::duration_cast<std::chrono::milliseconds>(o.lease_duration).count());
    spdlog::info("worker {} registered ({} gpus, {} cores)", w.id, w.gpus, w.cpu_cores);
    return absl::OkStatus();
  });
}

grpc::Status WorkerServiceImpl::AcquireJob(grpc::ServerContext*, const v1::AcquireJobRequest* req,
                                           v1::AcquireJobResponse* resp) {
  return Handle(d_.metrics, "AcquireJob", [&]() -> absl::Status {
    RETURN_IF_ERROR(CheckWorkerId(req->worker_id()));
    ASSIGN_OR_RETURN(auto job, d_.scheduler->AcquireJob(req->worker_id(), std::chrono::milliseconds(req->wait_ms())));
    if (job) *resp->mutable_job() = temper::ToProto(*job);
    return absl::OkStatus();
  });
}

grpc::Status WorkerServiceImpl::Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest* req,
                                          v1::HeartbeatResponse* resp) {
  return Handle(d_.metrics, "Heartbeat", [&]() -> absl::Status {
    RETURN_IF_ERROR(CheckWorkerId(req->worker_id()));
    if (req->leases_size() > 1024) return absl::InvalidArgumentError("more than 1024 leases in one heartbeat");
    std::vector<Lease> leases;
    for (const auto& l : req->leases()) leases.push_back(temper::FromProto(l));
    ASSIGN_OR_RETURN(auto r, d_.scheduler->Heartbeat(req->worker_id(), leases));
    for (const auto& l : r.extended) *resp->add_extended() = ToProto(l);
    for (const auto& l : r.cancelled) *resp->add_cancelled() = ToProto(l);
    for (const auto& l : r.lost) *resp->add_lost() = ToProto(l);
    resp->set_lease_expires_at_us(ToMicros(r.lease_expires_at));
    return absl::OkStatus();
  });
}

grpc::Status WorkerServiceImpl::ReportProgress(grpc::ServerContext*, const v1::ReportProgressRequest* req,
                                               v1::ReportProgressResponse* resp) {
  return Handle(d_.metrics, "ReportProgress", [&]() -> absl::Status {
    RETURN_IF_ERROR(CheckText("message", req->message(), kMaxErrorBytes));
    if (req->metrics_size() > 256) return absl::InvalidArgumentError("more than 256 metrics in one report");
    std::map<std::string, double> metrics;
    for (const auto& [k, v] : req->metrics()) {
      RETURN_IF_ERROR(CheckText("metric name", k, 128));
      metrics[k] = v;
    }
    ASSIGN_OR_RETURN(bool cancel, d_.scheduler->ReportProgress(temper::FromProto(req->lease()), req->step(), metrics,
                                                                req->message(), req->fraction()));
    resp->set_cancel_requested(cancel);
    return absl::OkStatus();
  });
}

grpc::Status WorkerServiceImpl::CompleteJob(grpc::ServerContext*, const v1::CompleteJobRequest* req,
                                            v1::CompleteJobResponse*) {
  return Handle(d_.metrics, "CompleteJob", [&]() -> absl::Status {
    RETURN_IF_ERROR(CheckText("result_json", req->result_json(), kMaxResultBytes));
    if (!req->result_json().empty() && !nlohmann::json::accept(req->result_json()))
      return absl::InvalidArgumentError("result_json is not valid JSON");
    std::optional<Checkpoint> ckpt;
    if (req->has_checkpoint()) {
      RETURN_IF_ERROR(CheckText("checkpoint.uri", req->checkpoint().uri(), 4096));
      if (req->checkpoint().uri().empty()) return absl::InvalidArgumentError("checkpoint.uri is required");
      ckpt = temper::FromProto(req->checkpoint());
    }
    return d_.scheduler->CompleteJob(temper::FromProto(req->lease()), req->result_json(), ckpt).status();
  });
}

grpc::Status WorkerServiceImpl::FailJob(grpc::ServerContext*, const v1::FailJobRequest* req, v1::FailJobResponse* resp) {
  return Handle(d_.metrics, "FailJob", [&]() -> absl::Status {
    std::string error = req->error().substr(0, kMaxErrorBytes);
    if (!IsValidUtf8(error)) return absl::InvalidArgumentError("error is not valid UTF-8");
    int c = req->failure_class();
    if (c < 0 || c > 5) return absl::InvalidArgumentError(absl::StrCat("unknown failure class ", c));
    ASSIGN_OR_RETURN(Job job, d_.scheduler->FailJob(temper::FromProto(req->lease()), static_cast<FailureClass>(c), error));
    resp->set_will_retry(job.state == JobState::kPending);
    return absl::OkStatus();
  });
}

grpc::Status WorkerServiceImpl::Rendezvous(grpc::ServerContext*, const v1::RendezvousRequest* req,
                                           v1::RendezvousResponse* resp) {
  return Handle(d_.metrics, "Rendezvous", [&]() -> absl::Status {
    if (req->payload().size() > 4096) return absl::InvalidArgumentError("rendezvous payload longer than 4096 bytes");
    ASSIGN_OR_RETURN(auto r, d_.scheduler->Rendezvous(temper::FromProto(req->lease()), req->payload(),
                                                      std::chrono::milliseconds(req->wait_ms())));
    resp->set_ready(r.ready);
    resp->set_payload(r.payload);
    resp->set_world_size(r.world_size);
    for (const auto& w : r.rank_workers) resp->add_rank_workers(w);
    return absl::OkStatus();
  });
}

grpc::Status CheckpointServiceImpl::ListCheckpoints(grpc::ServerContext*, const v1::ListCheckpointsRequest* req,
                                                    v1::ListCheckpointsResponse* resp) {
  return Handle(d_.metrics, "ListCheckpoints", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto list, d_.store->checkpoints().ListCheckpoints(req->run_id()));
    for (const auto& c : list) *resp->add_checkpoints() = temper::ToProto(c);
    return absl::OkStatus();
  });
}

grpc::Status CheckpointServiceImpl::GetLineage(grpc::ServerContext*, const v1::GetLineageRequest* req,
                                               v1::GetLineageResponse* resp) {
  return Handle(d_.metrics, "GetLineage", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto chain, d_.store->checkpoints().GetLineage(req->checkpoint_id()));
    for (const auto& c : chain) *resp->add_chain() = temper::ToProto(c);
    return absl::OkStatus();
  });
}

}  // namespace temper
