#include "libs/store/mem_store.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace temper {
namespace {

absl::Status StaleLease(const Lease& lease) {
  return absl::FailedPreconditionError(
      absl::StrCat("lease on job ", lease.job_id, " at epoch ", lease.epoch, " is stale"));
}

bool Holds(const Job& job, const Lease& lease) {
  return job.epoch == lease.epoch &&
         (job.state == JobState::kLeased || job.state == JobState::kRunning);
}

// All state of one MemStore; the four aggregate views share it and its mutex.
struct MemState {
  std::mutex mu;
  std::map<int64_t, Run> runs;
  std::map<int64_t, Job> jobs;
  std::map<std::string, Worker> workers;
  std::map<int64_t, Checkpoint> checkpoints;
  std::vector<RunEvent> events;
  std::vector<MetricPoint> metrics;
  std::map<int64_t, std::string> rendezvous;
  int64_t next_run = 1, next_job = 1, next_checkpoint = 1, next_event = 1, next_epoch = 1;

  void FillCounts(Run& run) {
    run.jobs_total = run.jobs_done = 0;
    for (const auto& [id, j] : jobs) {
      if (j.run_id != run.id) continue;
      ++run.jobs_total;
      if (IsTerminal(j.state)) ++run.jobs_done;
    }
  }

  void Event(const Job& job, const AttemptOutcome& outcome, TimePoint now) {
    if (outcome.event_message.empty()) return;
    RunEvent e;
    e.id = next_event++;
    e.run_id = job.run_id;
    e.job_id = job.id;
    e.at = now;
    e.type = EventType(outcome);
    e.message = outcome.event_message;
    events.push_back(e);
  }

  // Applies `outcome` to a job known to be held; the caller holds mu.
  void Apply(Job& job, const AttemptOutcome& outcome, TimePoint now) {
    job.lease_expires_at.reset();
    switch (outcome.kind) {
      case AttemptOutcome::Kind::kSucceed:
        job.state = JobState::kSucceeded;
        job.result_json = outcome.result_json;
        job.finished_at = now;
        break;
      case AttemptOutcome::Kind::kFail:
        job.state = JobState::kFailed;
        job.failure_class = outcome.failure_class;
        job.error = outcome.error;
        job.finished_at = now;
        break;
      case AttemptOutcome::Kind::kCancel:
        job.state = JobState::kCancelled;
        job.error = outcome.error;
        job.finished_at = now;
        break;
      case AttemptOutcome::Kind::kRequeue:
        job.state = JobState::kPending;
        job.failure_class = outcome.failure_class;
        job.error = outcome.error;
        job.not_before = outcome.not_before;
        job.worker_id.clear();
        job.started_at.reset();
        if (outcome.refund_attempt && job.attempts > 0) --job.attempts;
        if (job.gang_id != 0) rendezvous.erase(job.gang_id);
        break;
    }
  }
};

class MemRunStore final : public RunStore {
 public:
  explicit MemRunStore(MemState* s) : s_(s) {}

  absl::StatusOr<Run> CreateRun(const NewRun& in, TimePoint now) override {
    std::lock_guard lock(s_->mu);
    if (!in.idempotency_key.empty()) {
      for (auto& [id, r] : s_->runs) {
        if (r.idempotency_key == in.idempotency_key) return r;
      }
    }
    Run run;
    run.id = s_->next_run++;
    run.name = in.name;
    run.config_json = in.config_json;
    run.idempotency_key = in.idempotency_key;
    run.priority = in.priority;
    run.total_rounds = in.total_rounds;
    run.created_at = run.updated_at = now;
    s_->runs[run.id] = run;
    return run;
  }

  absl::StatusOr<Run> GetRun(int64_t id) override {
    std::lock_guard lock(s_->mu);
    auto it = s_->runs.find(id);
    if (it == s_->runs.end()) return absl::NotFoundError(absl::StrCat("run ", id, " not found"));
    Run run = it->second;
    s_->FillCounts(run);
    return run;
  }

  absl::StatusOr<std::vector<Run>> ListRuns(const RunFilter& f) override {
    std::lock_guard lock(s_->mu);
    std::vector<Run> out;
    for (auto it = s_->runs.rbegin(); it != s_->runs.rend(); ++it) {
      const Run& r = it->second;
      if (f.before_id > 0 && r.id >= f.before_id) continue;
      if (!f.states.empty() && std::find(f.states.begin(), f.states.end(), r.state) == f.states.end())
        continue;
      if (!absl::StartsWith(r.name, f.name_prefix)) continue;
      out.push_back(r);
      s_->FillCounts(out.back());
      if (static_cast<int32_t>(out.size()) >= f.limit) break;
    }
    return out;
  }

  absl::StatusOr<Run> SetRunState(int64_t id, RunState state, const std::string& error,
                                  TimePoint now) override {
    std::lock_guard lock(s_->mu);
    auto it = s_->runs.find(id);
    if (it == s_->runs.end()) return absl::NotFoundError(absl::StrCat("run ", id, " not found"));
    Run& r = it->second;
    if (!IsTerminal(r.state)) {
      r.state = state;
      r.error = error;
      r.updated_at = now;
    }
    return r;
  }

  absl::Status AdvanceRound(int64_t id, int32_t round, TimePoint now) override {
    std::lock_guard lock(s_->mu);
    auto it = s_->runs.find(id);
    if (it == s_->runs.end()) return absl::NotFoundError(absl::StrCat("run ", id, " not found"));
    if (!IsTerminal(it->second.state) && round > it->second.round) {
      it->second.round = round;
      it->second.updated_at = now;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Run> RequestCancel(int64_t id, const std::string& reason, TimePoint now) override {
    std::lock_guard lock(s_->mu);
    auto it = s_->runs.find(id);
    if (it == s_->runs.end()) return absl::NotFoundError(absl::StrCat("run ", id, " not found"));
    Run& r = it->second;
    if (IsTerminal(r.state)) return r;
    r.cancel_requested = true;
    r.updated_at = now;
    for (auto& [jid, j] : s_->jobs) {
      if (j.run_id != id) continue;
      if (j.state == JobState::kPending) {
        j.state = JobState::kCancelled;
        j.error = reason;
        j.finished_at = now;
      } else if (j.state == JobState::kLeased || j.state == JobState::kRunning) {
        j.cancel_requested = true;
      }
    }
    return r;
  }

  absl::StatusOr<std::vector<Run>> ListActiveRuns() override {
    std::lock_guard lock(s_->mu);
    std::vector<Run> out;
    for (auto& [id, r] : s_->runs) {
      if (!IsTerminal(r.state)) out.push_back(r);
    }
    return out;
  }

  absl::StatusOr<int64_t> AppendEvent(const RunEvent& event) override {
    std::lock_guard lock(s_->mu);
    if (!s_->runs.contains(event.run_id))
      return absl::NotFoundError(absl::StrCat("run ", event.run_id, " not found"));
    RunEvent e = event;
    e.id = s_->next_event++;
    s_->events.push_back(e);
    return e.id;
  }

  absl::StatusOr<std::vector<RunEvent>> ListEvents(int64_t run_id, int64_t after_id,
                                                   int32_t limit) override {
    std::lock_guard lock(s_->mu);
    std::vector<RunEvent> out;
    for (const auto& e : s_->events) {
      if (e.run_id == run_id && e.id > after_id) out.push_back(e);
      if (static_cast<int32_t>(out.size()) >= limit) break;
    }
    return out;
  }

  absl::Status RecordMetrics(const std::vector<MetricPoint>& points) override {
    std::lock_guard lock(s_->mu);
    for (const auto& p : points) {
      if (!s_->runs.contains(p.run_id))
        return absl::NotFoundError(absl::StrCat("run ", p.run_id, " not found"));
    }
    s_->metrics.insert(s_->metrics.end(), points.begin(), points.end());
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<MetricPoint>> ListMetrics(int64_t run_id) override {
    std::lock_guard lock(s_->mu);
    std::vector<MetricPoint> out;
    for (const auto& p : s_->metrics) {
      if (p.run_id == run_id) out.push_back(p);
    }
    std::stable_sort(out.begin(), out.end(), [](const MetricPoint& a, const MetricPoint& b) {
      return std::tie(a.name, a.step) < std::tie(b.name, b.step);
    });
    return out;
  }

 private:
  MemState* s_;
};

class MemJobStore final : public JobStore {
 public:
  explicit MemJobStore(MemState* s) : s_(s) {}

  absl::StatusOr<std::vector<int64_t>> EnqueueJobs(const std::vector<NewJob>& in,
                                                   TimePoint now) override {
    std::lock_guard lock(s_->mu);
    for (const auto& nj : in) {
      if (!s_->runs.contains(nj.run_id))
        return absl::NotFoundError(absl::StrCat("run ", nj.run_id, " not found"));
    }
    std::vector<int64_t> ids;
    for (const auto& nj : in) {
      int64_t gang_id = 0;
      for (int32_t rank = 0; rank < std::max(1, nj.world_size); ++rank) {
        bool exists = std::any_of(s_->jobs.begin(), s_->jobs.end(), [&](const auto& kv) {
          return kv.second.run_id == nj.run_id && kv.second.stage == nj.stage && kv.second.rank == rank;
        });
        if (exists) continue;
        Job j;
        j.id = s_->next_job++;
        j.run_id = nj.run_id;
        j.kind = nj.kind;
        j.stage = nj.stage;
        j.round = nj.round;
        j.requirements = nj.requirements;
        j.priority = nj.priority;
        j.max_attempts = nj.max_attempts;
        j.payload_json = nj.payload_json;
        j.world_size = std::max(1, nj.world_size);
        j.rank = rank;
        if (nj.world_size > 1) {
          if (rank == 0) gang_id = j.id;
          j.gang_id = gang_id;
        }
        j.created_at = j.not_before = now;
        s_->jobs[j.id] = j;
        ids.push_back(j.id);
      }
    }
    return ids;
  }

  absl::StatusOr<std::vector<std::optional<Job>>> AcquireJobs(const std::vector<WorkerOffer>& offers,
                                                              TimePoint now,
                                                              TimePoint lease_until) override {
    std::lock_guard lock(s_->mu);
    std::vector<Job*> ready;
    for (auto& [id, j] : s_->jobs) {
      if (j.state == JobState::kPending && j.not_before <= now) ready.push_back(&j);
    }
    std::stable_sort(ready.begin(), ready.end(),
                     [](const Job* a, const Job* b) { return a->priority > b->priority; });
    std::vector<std::optional<Job>> out(offers.size());
    std::vector<bool> taken(offers.size(), false);
    for (Job* j : ready) {
      for (size_t i = 0; i < offers.size(); ++i) {
        if (taken[i] || !offers[i].Fits(*j)) continue;
        taken[i] = true;
        j->state = JobState::kLeased;
        j->epoch = s_->next_epoch++;
        j->worker_id = offers[i].worker_id;
        j->attempts++;
        j->lease_expires_at = lease_until;
        out[i] = *j;
        break;
      }
    }
    return out;
  }

  absl::StatusOr<Job> ExtendLease(const Lease& lease, TimePoint now, TimePoint until) override {
    std::lock_guard lock(s_->mu);
    auto it = s_->jobs.find(lease.job_id);
    if (it == s_->jobs.end() || !Holds(it->second, lease)) return StaleLease(lease);
    Job& j = it->second;
    if (j.state == JobState::kLeased) {
      j.state = JobState::kRunning;
      j.started_at = now;
    }
    j.lease_expires_at = until;
    return j;
  }

  absl::StatusOr<Job> FinishAttempt(const Lease& lease, const AttemptOutcome& outcome,
                                    TimePoint now) override {
    std::lock_guard lock(s_->mu);
    auto it = s_->jobs.find(lease.job_id);
    if (it == s_->jobs.end()) return absl::NotFoundError(absl::StrCat("job ", lease.job_id, " not found"));
    Job& j = it->second;
    if (!Holds(j, lease)) {
      if (outcome.kind == AttemptOutcome::Kind::kSucceed && j.state == JobState::kSucceeded &&
          j.epoch == lease.epoch && j.result_json == outcome.result_json)
        return j;
      return StaleLease(lease);
    }
    s_->Apply(j, outcome, now);
    s_->Event(j, outcome, now);
    return j;
  }

  absl::StatusOr<std::vector<Job>> ListExpiredLeases(TimePoint now, int32_t limit) override {
    std::lock_guard lock(s_->mu);
    std::vector<Job> out;
    for (auto& [id, j] : s_->jobs) {
      if ((j.state == JobState::kLeased || j.state == JobState::kRunning) && j.lease_expires_at &&
          *j.lease_expires_at < now)
        out.push_back(j);
      if (static_cast<int32_t>(out.size()) >= limit) break;
    }
    return out;
  }

  absl::StatusOr<Job> GetJob(int64_t id) override {
    std::lock_guard lock(s_->mu);
    auto it = s_->jobs.find(id);
    if (it == s_->jobs.end()) return absl::NotFoundError(absl::StrCat("job ", id, " not found"));
    return it->second;
  }

  absl::StatusOr<std::vector<Job>> ListJobs(const JobFilter& f) override {
    std::lock_guard lock(s_->mu);
    std::vector<Job> out;
    for (auto& [id, j] : s_->jobs) {
      if (f.run_id != 0 && j.run_id != f.run_id) continue;
      if (!f.states.empty() && std::find(f.states.begin(), f.states.end(), j.state) == f.states.end())
        continue;
      out.push_back(j);
      if (static_cast<int32_t>(out.size()) >= f.limit) break;
    }
    return out;
  }

  absl::StatusOr<std::map<std::pair<JobKind, JobState>, int64_t>> CountJobs() override {
    std::lock_guard lock(s_->mu);
    std::map<std::pair<JobKind, JobState>, int64_t> out;
    for (const auto& [id, j] : s_->jobs) ++out[{j.kind, j.state}];
    return out;
  }

  absl::StatusOr<std::vector<Job>> GetGang(int64_t gang_id) override {
    std::lock_guard lock(s_->mu);
    return GangLocked(gang_id);
  }

  absl::Status SetRendezvous(const Lease& rank0, const std::string& payload) override {
    std::lock_guard lock(s_->mu);
    auto it = s_->jobs.find(rank0.job_id);
    if (it == s_->jobs.end() || !Holds(it->second, rank0)) return StaleLease(rank0);
    if (it->second.rank != 0 || it->second.gang_id == 0)
      return absl::InvalidArgumentError("only rank 0 of a gang posts the rendezvous payload");
    s_->rendezvous[it->second.gang_id] = payload;
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> GetRendezvous(int64_t gang_id) override {
    std::lock_guard lock(s_->mu);
    auto it = s_->rendezvous.find(gang_id);
    return it == s_->rendezvous.end() ? std::string() : it->second;
  }

  absl::StatusOr<std::vector<Job>> FinishGang(const Lease& trigger, const AttemptOutcome& outcome,
                                              TimePoint now) override {
    std::lock_guard lock(s_->mu);
    auto t = s_->jobs.find(trigger.job_id);
    if (t == s_->jobs.end() || !Holds(t->second, trigger) || t->second.gang_id == 0) return StaleLease(trigger);
    const int64_t gang_id = t->second.gang_id;
    std::vector<Job> out;
    for (auto& [id, j] : s_->jobs) {
      if (j.gang_id != gang_id || IsTerminal(j.state)) continue;
      if (j.state == JobState::kPending) {
        // A rank never leased this attempt: it follows the gang's outcome without an attempt.
        if (outcome.kind != AttemptOutcome::Kind::kRequeue) s_->Apply(j, outcome, now);
        else j.not_before = std::max(j.not_before, outcome.not_before);
      } else {
        s_->Apply(j, outcome, now);
      }
      out.push_back(j);
    }
    s_->rendezvous.erase(gang_id);
    s_->Event(t->second, outcome, now);
    return out;
  }

 private:
  std::vector<Job> GangLocked(int64_t gang_id) {
    std::vector<Job> out;
    for (auto& [id, j] : s_->jobs) {
      if (j.gang_id == gang_id) out.push_back(j);
    }
    return out;
  }
  MemState* s_;
};

class MemWorkerStore final : public WorkerStore {
 public:
  explicit MemWorkerStore(MemState* s) : s_(s) {}

  absl::StatusOr<Worker> UpsertWorker(const Worker& in, TimePoint now) override {
    std::lock_guard lock(s_->mu);
    Worker w = in;
    auto it = s_->workers.find(in.id);
    w.registered_at = it == s_->workers.end() ? now : it->second.registered_at;
    w.last_heartbeat = now;
    w.state = "idle";
    s_->workers[w.id] = w;
    return w;
  }

  absl::StatusOr<Worker> GetWorker(const std::string& id) override {
    std::lock_guard lock(s_->mu);
    auto it = s_->workers.find(id);
    if (it == s_->workers.end()) return absl::NotFoundError(absl::StrCat("worker ", id, " not found"));
    return it->second;
  }

  absl::Status TouchWorker(const std::string& id, const std::string& state, TimePoint now) override {
    std::lock_guard lock(s_->mu);
    auto it = s_->workers.find(id);
    if (it == s_->workers.end()) return absl::NotFoundError(absl::StrCat("worker ", id, " not found"));
    it->second.state = state;
    it->second.last_heartbeat = now;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<Worker>> ListWorkers() override {
    std::lock_guard lock(s_->mu);
    std::vector<Worker> out;
    for (auto& [id, w] : s_->workers) out.push_back(w);
    return out;
  }

  absl::StatusOr<int> MarkLostWorkers(TimePoint cutoff) override {
    std::lock_guard lock(s_->mu);
    int n = 0;
    for (auto& [id, w] : s_->workers) {
      if (w.state != "lost" && w.last_heartbeat < cutoff) {
        w.state = "lost";
        ++n;
      }
    }
    return n;
  }

 private:
  MemState* s_;
};

class MemCheckpointStore final : public CheckpointStore {
 public:
  explicit MemCheckpointStore(MemState* s) : s_(s) {}

  absl::StatusOr<Checkpoint> AddCheckpoint(const Checkpoint& in, TimePoint now) override {
    std::lock_guard lock(s_->mu);
    if (!s_->runs.contains(in.run_id))
      return absl::NotFoundError(absl::StrCat("run ", in.run_id, " not found"));
    if (in.parent_id != 0 && !s_->checkpoints.contains(in.parent_id))
      return absl::InvalidArgumentError(absl::StrCat("parent checkpoint ", in.parent_id, " not found"));
    Checkpoint c = in;
    c.id = s_->next_checkpoint++;
    c.created_at = now;
    c.depth = 0;
    s_->checkpoints[c.id] = c;
    return c;
  }

  absl::StatusOr<std::vector<Checkpoint>> ListCheckpoints(int64_t run_id) override {
    std::lock_guard lock(s_->mu);
    std::vector<Checkpoint> out;
    for (auto& [id, c] : s_->checkpoints) {
      if (c.run_id == run_id) out.push_back(c);
    }
    return out;
  }

  absl::StatusOr<std::vector<Checkpoint>> GetLineage(int64_t checkpoint_id) override {
    std::lock_guard lock(s_->mu);
    std::vector<Checkpoint> out;
    int64_t id = checkpoint_id;
    while (id != 0) {
      auto it = s_->checkpoints.find(id);
      if (it == s_->checkpoints.end()) break;
      out.push_back(it->second);
      out.back().depth = static_cast<int32_t>(out.size()) - 1;
      id = it->second.parent_id;
    }
    if (out.empty()) return absl::NotFoundError(absl::StrCat("checkpoint ", checkpoint_id, " not found"));
    return out;
  }

 private:
  MemState* s_;
};

class MemStore final : public Store {
 public:
  MemStore() : runs_(&state_), jobs_(&state_), workers_(&state_), checkpoints_(&state_) {}
  RunStore& runs() override { return runs_; }
  JobStore& jobs() override { return jobs_; }
  WorkerStore& workers() override { return workers_; }
  CheckpointStore& checkpoints() override { return checkpoints_; }

 private:
  MemState state_;
  MemRunStore runs_;
  MemJobStore jobs_;
  MemWorkerStore workers_;
  MemCheckpointStore checkpoints_;
};

}  // namespace

std::unique_ptr<Store> NewMemStore() { return std::make_unique<MemStore>(); }

}  // namespace temper
