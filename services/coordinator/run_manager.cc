#include "services/coordinator/run_manager.h"

#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "libs/config/run_config.h"
#include "nlohmann/json.hpp"
#include "services/coordinator/scheduler.h"
#include "spdlog/spdlog.h"

namespace temper {
namespace {

absl::StatusOr<v1::RunConfig> ParseStoredConfig(const Run& run) {
  v1::RunConfig config;
  auto s = google::protobuf::util::JsonStringToMessage(run.config_json, &config);
  if (!s.ok()) return absl::DataLossError(absl::StrCat("run ", run.id, ": stored config unreadable: ", s.ToString()));
  return config;
}

}  // namespace

std::vector<Stage> PlanStages(const v1::RunConfig& config) {
  std::vector<Stage> stages;
  int32_t rounds = config.expert_iteration().rounds();
  if (rounds == 0) {
    stages.push_back({"r0/train", JobKind::kTrain, 0});
  }
  for (int32_t r = 0; r < rounds; ++r) {
    stages.push_back({absl::StrCat("r", r, "/generate"), JobKind::kGenerate, r});
    stages.push_back({absl::StrCat("r", r, "/eval"), JobKind::kEval, r});
    stages.push_back({absl::StrCat("r", r, "/train"), JobKind::kTrain, r});
  }
  if (config.eval().benchmark() != "none") stages.push_back({"final/eval", JobKind::kEval, rounds});
  return stages;
}

RunManager::RunManager(Store* store, Clock* clock, Scheduler* scheduler)
    : store_(store), clock_(clock), scheduler_(scheduler) {}

RunManager::~RunManager() { Shutdown(); }

absl::StatusOr<Run> RunManager::Submit(const v1::RunConfig& in, const std::string& idempotency_key) {
  v1::RunConfig config = in;
  ApplyDefaults(&config);
  RETURN_IF_ERROR(ValidateRunConfig(config));
  if (idempotency_key.size() > 256) return absl::InvalidArgumentError("idempotency_key longer than 256 bytes");
  std::string json;
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(config, &json, opts).ok())
    return absl::InternalError("cannot serialise the run config");
  NewRun nr;
  nr.name = config.name();
  nr.config_json = json;
  nr.idempotency_key = idempotency_key;
  nr.priority = config.priority();
  nr.total_rounds = config.expert_iteration().rounds();
  ASSIGN_OR_RETURN(Run run, store_->runs().CreateRun(nr, clock_->Now()));
  if (run.state == RunState::kPending && run.jobs_total == 0) {
    Emit(run.id, "submitted", absl::StrCat("run ", run.name, " submitted: ", PlanStages(config).size(), " stages"), 0);
    RETURN_IF_ERROR(Reconcile(run.id));
  }
  return store_->runs().GetRun(run.id);
}

absl::StatusOr<Run> RunManager::Cancel(int64_t run_id, const std::string& reason) {
  ASSIGN_OR_RETURN(Run run, store_->runs().RequestCancel(run_id, reason.empty() ? "cancelled by user" : reason,
                                                          clock_->Now()));
  if (!IsTerminal(run.state)) {
    Emit(run_id, "cancel_requested", reason.empty() ? "cancel requested" : reason);
    RETURN_IF_ERROR(Reconcile(run_id));
  }
  return store_->runs().GetRun(run_id);
}

absl::Status RunManager::Reconcile(int64_t run_id) {
  ASSIGN_OR_RETURN(Run run, store_->runs().GetRun(run_id));
  if (IsTerminal(run.state)) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto jobs, store_->jobs().ListJobs({run_id, {}, 100000}));
  bool active = std::any_of(jobs.begin(), jobs.end(), [](const Job& j) { return !IsTerminal(j.state); });
  TimePoint now = clock_->Now();
  if (run.cancel_requested) {
    if (active) return absl::OkStatus();  // workers learn it in their next heartbeat
    RETURN_IF_ERROR(store_->runs().SetRunState(run_id, RunState::kCancelled, "cancelled", now).status());
    Emit(run_id, "run_cancelled", "run cancelled");
    return absl::OkStatus();
  }
  auto failed = std::find_if(jobs.begin(), jobs.end(), [](const Job& j) { return j.state == JobState::kFailed; });
  if (failed != jobs.end()) {
    std::string error = absl::StrCat(failed->stage, " failed (", ToString(failed->failure_class), "): ", failed->error);
    if (active) {
      RETURN_IF_ERROR(store_->runs().RequestCancel(run_id, "another job of the run failed", now).status());
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(store_->runs().SetRunState(run_id, RunState::kFailed, error, now).status());
    Emit(run_id, "run_failed", error);
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(v1::RunConfig config, ParseStoredConfig(run));
  auto stages = PlanStages(config);
  for (size_t i = 0; i < stages.size(); ++i) {
    const Stage& stage = stages[i];
    int32_t total = 0, succeeded = 0;
    for (const Job& j : jobs) {
      if (j.stage != stage.name) continue;
      ++total;
      succeeded += j.state == JobState::kSucceeded;
    }
    if (total > 0 && succeeded == total) continue;
    if (total > 0) {
      if (run.state == RunState::kPending)
        RETURN_IF_ERROR(store_->runs().SetRunState(run_id, RunState::kRunning, "", now).status());
      return absl::OkStatus();  // the stage is under way
    }
    NewJob nj;
    nj.run_id = run_id;
    nj.kind = stage.kind;
    nj.stage = stage.name;
    nj.round = stage.round;
    nj.priority = config.priority();
    nj.max_attempts = config.resources().max_attempts() > 0 ? config.resources().max_attempts() : 3;
    if (stage.kind == JobKind::kTrain) {
      nj.world_size = std::max(1, config.resources().gpus());
      nj.requirements.gpus = config.resources().gpus() > 0 ? 1 : 0;
      nj.requirements.gpu_memory_mb = config.resources().gpu_memory_mb();
    } else if (stage.kind == JobKind::kGenerate) {
      nj.requirements.gpus = config.resources().gpus() > 0 ? 1 : 0;
      nj.requirements.gpu_memory_mb = config.resources().gpu_memory_mb();
    } else {
      nj.requirements.cpu_cores = config.resources().cpu_cores();
    }
    nlohmann::json payload = {{"run_id", run_id}, {"stage", stage.name}, {"round", stage.round},
                              {"config", nlohmann::json::parse(run.config_json, nullptr, false)}};
    // Each stage consumes what the one before produced.
    if (i > 0) {
      for (const Job& j : jobs) {
        if (j.stage == stages[i - 1].name && j.rank == 0) payload["input_job_id"] = j.id;
      }
    }
    ASSIGN_OR_RETURN(auto checkpoints, store_->checkpoints().ListCheckpoints(run_id));
    if (!checkpoints.empty()) payload["parent_checkpoint_id"] = checkpoints.back().id;
    nj.payload_json = payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    RETURN_IF_ERROR(store_->runs().AdvanceRound(run_id, stage.round, now));
    ASSIGN_OR_RETURN(auto ids, store_->jobs().EnqueueJobs({nj}, now));
    if (!ids.empty()) {
      if (run.state == RunState::kPending)
        RETURN_IF_ERROR(store_->runs().SetRunState(run_id, RunState::kRunning, "", now).status());
      Emit(run_id, "stage_queued",
           absl::StrCat("stage ", i + 1, "/", stages.size(), " ", stage.name, " queued",
                        nj.world_size > 1 ? absl::StrCat(" as a gang of ", nj.world_size) : ""),
           static_cast<double>(i) / stages.size());
      if (scheduler_) scheduler_->NotifyWork();
    }
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(store_->runs().SetRunState(run_id, RunState::kSucceeded, "", now).status());
  Emit(run_id, "run_succeeded", absl::StrCat("all ", stages.size(), " stages succeeded"), 1.0);
  return absl::OkStatus();
}

absl::Status RunManager::ReconcileAll() {
  ASSIGN_OR_RETURN(auto runs, store_->runs().ListActiveRuns());
  for (const Run& run : runs) RETURN_IF_ERROR(Reconcile(run.id));
  return absl::OkStatus();
}

void RunManager::MarkDirty(int64_t run_id) {
  {
    std::lock_guard lock(mu_);
    dirty_.insert(run_id);
  }
  cv_.notify_one();
}

void RunManager::Loop() {
  std::unique_lock lock(mu_);
  while (true) {
    // Periodic full pass as a safety net (e.g. runs changed by another coordinator).
    bool woke = cv_.wait_for(lock, std::chrono::seconds(5), [&] { return stopping_ || !dirty_.empty(); });
    if (stopping_) return;
    std::set<int64_t> batch;
    batch.swap(dirty_);
    lock.unlock();
    absl::Status s = woke ? absl::OkStatus() : ReconcileAll();
    for (int64_t id : batch) {
      if (auto r = Reconcile(id); !r.ok()) {
        spdlog::warn("run {}: reconcile failed: {}", id, r.ToString());
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        MarkDirty(id);
      }
    }
    if (!s.ok()) spdlog::warn("reconcile pass failed: {}", s.ToString());
    lock.lock();
  }
}

void RunManager::Emit(int64_t run_id, const std::string& type, const std::string& message, double progress) {
  RunEvent e;
  e.run_id = run_id;
  e.at = clock_->Now();
  e.type = type;
  e.message = message;
  e.progress = progress;
  if (auto s = store_->runs().AppendEvent(e); !s.ok())
    spdlog::warn("run {}: event not recorded: {}", run_id, s.status().ToString());
}

void RunManager::StartBackground() {
  std::lock_guard lock(mu_);
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
}

void RunManager::Shutdown() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace temper
