#include "services/coordinator/scheduler.h"

#include <unistd.h>

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace temper {
namespace {

bool Retryable(FailureClass c) {
  return c == FailureClass::kInfrastructure || c == FailureClass::kOom || c == FailureClass::kPreempted;
}

double Seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

std::string NewWorkerId(const std::string& hostname) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  return absl::StrCat(hostname.empty() ? "worker" : hostname, "-", absl::Hex(rng() & 0xffffffffffULL));
}

}  // namespace

Scheduler::Scheduler(Store* store, Clock* clock, CoordinatorMetrics* metrics, SchedulerOptions options)
    : store_(store), clock_(clock), metrics_(metrics), options_(options) {}

Scheduler::~Scheduler() { Shutdown(); }

Duration Scheduler::Backoff(int32_t attempts) const {
  Duration d = options_.backoff_base;
  for (int32_t i = 1; i < attempts && d < options_.backoff_max; ++i) d *= 2;
  return std::min(d, options_.backoff_max);
}

absl::StatusOr<Worker> Scheduler::RegisterWorker(Worker worker) {
  if (worker.id.empty()) worker.id = NewWorkerId(worker.hostname);
  if (worker.id.size() > 128) return absl::InvalidArgumentError("worker id longer than 128 bytes");
  if (worker.kinds.empty()) return absl::InvalidArgumentError("a worker must accept at least one job kind");
  if (worker.gpus < 0 || worker.cpu_cores < 0 || worker.gpu_memory_mb < 0)
    return absl::InvalidArgumentError("worker capabilities must not be negative");
  ASSIGN_OR_RETURN(Worker stored, store_->workers().UpsertWorker(worker, clock_->Now()));
  std::lock_guard lock(mu_);
  offers_[stored.id] = {stored.id, stored.kinds, stored.gpus, stored.gpu_memory_mb, stored.cpu_cores};
  return stored;
}

absl::StatusOr<WorkerOffer> Scheduler::OfferOf(const std::string& worker_id) {
  {
    std::lock_guard lock(mu_);
    auto it = offers_.find(worker_id);
    if (it != offers_.end()) return it->second;
  }
  // Registered with another coordinator, or before a restart: the store knows it.
  ASSIGN_OR_RETURN(Worker worker, store_->workers().GetWorker(worker_id));
  WorkerOffer offer{worker.id, worker.kinds, worker.gpus, worker.gpu_memory_mb, worker.cpu_cores};
  std::lock_guard lock(mu_);
  offers_[worker_id] = offer;
  return offer;
}

absl::StatusOr<std::optional<Job>> Scheduler::AcquireJob(const std::string& worker_id, Duration wait) {
  auto started = std::chrono::steady_clock::now();
  auto w = std::make_shared<Waiter>();
  ASSIGN_OR_RETURN(w->offer, OfferOf(worker_id));
  wait = std::clamp(wait, Duration::zero(), options_.max_acquire_wait);
  bool background, alone;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return absl::UnavailableError("coordinator is shutting down");
    waiters_.push_back(w);
    background = !dispatchers_.empty();
    alone = waiters_.size() == 1;
  }
  std::optional<Job> job;
  if (!background) {
    // No dispatcher thread (tests): serve this waiter with one pass, never block.
    RETURN_IF_ERROR(DispatchOnce().status());
    std::lock_guard lock(mu_);
    waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), w), waiters_.end());
    job = w->job;
  } else {
    if (alone) {
      // Nobody else is waiting: lease in this thread rather than hand off to a dispatcher and
      // back, which costs two thread wake-ups on a lightly loaded coordinator.
      (void)DispatchOnce();
      std::lock_guard lock(mu_);
      w->tried = true;
    } else {
      dispatch_cv_.notify_one();
    }
    std::unique_lock lock(mu_);
    auto deadline = started + wait;
    waiter_cv_.wait_until(lock, deadline, [&] { return w->done || stopping_; });
    // A dispatch pass may be leasing for this waiter right now: wait for its answer, so a job is
    // never leased to a worker that stopped listening.
    waiter_cv_.wait(lock, [&] { return !w->claimed; });
    waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), w), waiters_.end());
    job = w->job;
  }
  if (metrics_) {
    metrics_->acquire_latency.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }
  return job;
}

absl::StatusOr<int> Scheduler::DispatchOnce() {
  std::vector<std::shared_ptr<Waiter>> batch;
  {
    std::lock_guard lock(mu_);
    for (auto& w : waiters_) {
      if (w->done || w->claimed) continue;
      w->claimed = true;
      batch.push_back(w);
      if (static_cast<int>(batch.size()) >= options_.dispatch_batch) break;
    }
  }
  if (batch.empty()) return 0;
  std::vector<WorkerOffer> offers;
  offers.reserve(batch.size());
  for (const auto& w : batch) offers.push_back(w->offer);
  TimePoint now = clock_->Now();
  auto leased = store_->jobs().AcquireJobs(offers, now, now + options_.lease_duration);
  int n = 0;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < batch.size(); ++i) {
      batch[i]->claimed = false;
      if (leased.ok() && (*leased)[i]) {
        batch[i]->job = std::move((*leased)[i]);
        batch[i]->done = true;
        ++n;
      }
    }
  }
  waiter_cv_.notify_all();
  if (n > 0) rendezvous_cv_.notify_all();
  if (!leased.ok()) return leased.status();
  if (metrics_) metrics_->jobs_dispatched.Increment(n);
  return n;
}

void Scheduler::NotifyWork() {
  {
    std::lock_guard lock(mu_);
    ++work_generation_;
  }
  dispatch_cv_.notify_one();
}

void Scheduler::DispatchLoop() {
  uint64_t seen = 0;
  while (true) {
    {
      std::unique_lock lock(mu_);
      // Wake on new work or a new waiter; a slow tick catches delayed (backoff) jobs and jobs that
      // another coordinator enqueued.
      dispatch_cv_.wait_for(lock, std::chrono::milliseconds(250), [&] {
        return stopping_ ||
               (work_generation_ != seen &&
                std::any_of(waiters_.begin(), waiters_.end(), [](auto& w) { return !w->done && !w->claimed; })) ||
               std::any_of(waiters_.begin(), waiters_.end(), [](auto& w) { return !w->done && !w->claimed && !w->tried; });
      });
      if (stopping_) return;
      seen = work_generation_;
      for (auto& w : waiters_) w->tried = true;
    }
    auto n = DispatchOnce();
    if (!n.ok()) {
      spdlog::warn("dispatch failed: {}", std::string(n.status().message()));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } else if (*n > 0) {
      std::lock_guard lock(mu_);
      seen = work_generation_ - 1;  // jobs were there: look again at once
    }
  }
}

absl::StatusOr<HeartbeatResult> Scheduler::Heartbeat(const std::string& worker_id,
                                                     const std::vector<Lease>& leases) {
  TimePoint now = clock_->Now();
  RETURN_IF_ERROR(store_->workers().TouchWorker(worker_id, leases.empty() ? "idle" : "busy", now));
  HeartbeatResult out;
  out.lease_expires_at = now + options_.lease_duration;
  for (const Lease& lease : leases) {
    auto job = store_->jobs().ExtendLease(lease, now, out.lease_expires_at);
    if (job.status().code() == absl::StatusCode::kFailedPrecondition) {
      out.lost.push_back(lease);
      continue;
    }
    RETURN_IF_ERROR(job.status());
    if (job->worker_id != worker_id) {
      out.lost.push_back(lease);
      continue;
    }
    if (!job->cancel_requested) {
      out.extended.push_back(lease);
      continue;
    }
    AttemptOutcome cancel;
    cancel.kind = AttemptOutcome::Kind::kCancel;
    cancel.error = "run cancelled";
    cancel.event_message = absl::StrCat(job->stage, " cancelled with its run");
    auto ended = job->gang_id != 0 ? store_->jobs().FinishGang(lease, cancel, now).status()
                                   : store_->jobs().FinishAttempt(lease, cancel, now).status();
    if (!ended.ok() && ended.code() != absl::StatusCode::kFailedPrecondition) return ended;
    out.cancelled.push_back(lease);
    job->state = JobState::kCancelled;
    JobEnded(*job);
  }
  return out;
}

absl::StatusOr<bool> Scheduler::ReportProgress(const Lease& lease, int64_t step,
                                               const std::map<std::string, double>& metrics,
                                               const std::string& message, double fraction) {
  TimePoint now = clock_->Now();
  ASSIGN_OR_RETURN(Job job, store_->jobs().ExtendLease(lease, now, now + options_.lease_duration));
  if (!metrics.empty()) {
    std::vector<MetricPoint> points;
    for (const auto& [name, value] : metrics) points.push_back({job.run_id, job.id, step, name, value});
    RETURN_IF_ERROR(store_->runs().RecordMetrics(points));
  }
  RunEvent e;
  e.run_id = job.run_id;
  e.job_id = job.id;
  e.at = now;
  e.type = "progress";
  e.message = message.empty() ? absl::StrCat(job.stage, " step ", step) : absl::StrCat(job.stage, ": ", message);
  e.progress = std::clamp(fraction, -1.0, 1.0);
  e.metrics = metrics;
  RETURN_IF_ERROR(store_->runs().AppendEvent(e).status());
  return job.cancel_requested;
}

absl::StatusOr<Job> Scheduler::CompleteJob(const Lease& lease, const std::string& result_json,
                                           const std::optional<Checkpoint>& checkpoint) {
  AttemptOutcome done;
  done.result_json = result_json.empty() ? "{}" : result_json;
  done.event_message = absl::StrCat("job ", lease.job_id, " succeeded");
  TimePoint now = clock_->Now();
  ASSIGN_OR_RETURN(Job job, store_->jobs().FinishAttempt(lease, done, now));
  if (checkpoint) {
    Checkpoint c = *checkpoint;
    c.run_id = job.run_id;
    c.job_id = job.id;
    c.round = job.round;
    auto added = store_->checkpoints().AddCheckpoint(c, now);
    if (!added.ok()) spdlog::warn("job {}: checkpoint not registered: {}", job.id, added.status().ToString());
  }
  if (metrics_ && job.started_at) {
    metrics_->job_duration.Add({{"kind", ToString(job.kind)}}, LatencyBuckets()).Observe(Seconds(
        std::chrono::duration_cast<Duration>(now - *job.started_at)));
  }
  JobEnded(job);
  return job;
}

absl::StatusOr<Job> Scheduler::FailJob(const Lease& lease, FailureClass failure_class, const std::string& error) {
  ASSIGN_OR_RETURN(Job job, store_->jobs().GetJob(lease.job_id));
  if (job.epoch != lease.epoch || (job.state != JobState::kLeased && job.state != JobState::kRunning))
    return absl::FailedPreconditionError(
        absl::StrCat("lease on job ", lease.job_id, " at epoch ", lease.epoch, " is stale"));
  if (failure_class == FailureClass::kNone) failure_class = FailureClass::kInfrastructure;
  return EndFailedAttempt(job, failure_class, error);
}

absl::StatusOr<Job> Scheduler::EndFailedAttempt(const Job& job, FailureClass failure_class,
                                                const std::string& error) {
  TimePoint now = clock_->Now();
  ASSIGN_OR_RETURN(Run run, store_->runs().GetRun(job.run_id));
  AttemptOutcome outcome;
  outcome.failure_class = failure_class;
  outcome.error = error;
  bool refund = failure_class == FailureClass::kPreempted;
  int32_t used = job.attempts - (refund ? 1 : 0);
  if (run.cancel_requested) {
    outcome.kind = AttemptOutcome::Kind::kCancel;
  } else if (Retryable(failure_class) && used < job.max_attempts) {
    outcome.kind = AttemptOutcome::Kind::kRequeue;
    outcome.refund_attempt = refund;
    outcome.not_before = now + Backoff(std::max(1, used));
  } else {
    outcome.kind = AttemptOutcome::Kind::kFail;
  }
  outcome.event_message =
      absl::StrCat(job.stage, job.gang_id ? " (gang)" : "", ": ", ToString(failure_class), ": ", error,
                   outcome.kind == AttemptOutcome::Kind::kRequeue
                       ? absl::StrCat("; retry ", used + 1, "/", job.max_attempts, " after ",
                                      Seconds(std::chrono::duration_cast<Duration>(outcome.not_before - now)), "s")
                       : "");
  Lease lease{job.id, job.epoch};
  std::vector<Job> ended;
  if (job.gang_id != 0) {
    ASSIGN_OR_RETURN(ended, store_->jobs().FinishGang(lease, outcome, now));
  } else {
    ASSIGN_OR_RETURN(Job j, store_->jobs().FinishAttempt(lease, outcome, now));
    ended.push_back(std::move(j));
  }
  if (metrics_) metrics_->failures.Add({{"class", ToString(failure_class)}}).Increment();
  Job self = job;
  for (const Job& j : ended) {
    if (j.id == job.id) self = j;
  }
  JobEnded(self);
  return self;
}

absl::StatusOr<RendezvousResult> Scheduler::Rendezvous(const Lease& lease, const std::string& payload,
                                                       Duration wait) {
  auto deadline = std::chrono::steady_clock::now() + std::clamp(wait, Duration::zero(), options_.max_acquire_wait);
  bool posted = false;
  while (true) {
    TimePoint now = clock_->Now();
    ASSIGN_OR_RETURN(Job job, store_->jobs().ExtendLease(lease, now, now + options_.lease_duration));
    if (job.gang_id == 0) return absl::InvalidArgumentError(absl::StrCat("job ", job.id, " is not part of a gang"));
    if (job.rank == 0 && !payload.empty() && !posted) {
      RETURN_IF_ERROR(store_->jobs().SetRendezvous(lease, payload));
      posted = true;
      rendezvous_cv_.notify_all();
    }
    ASSIGN_OR_RETURN(auto gang, store_->jobs().GetGang(job.gang_id));
    ASSIGN_OR_RETURN(std::string stored, store_->jobs().GetRendezvous(job.gang_id));
    RendezvousResult r;
    r.world_size = job.world_size;
    bool all_leased = static_cast<int32_t>(gang.size()) == job.world_size;
    for (const auto& rank : gang) {
      // A rank that already finished was part of this assembly (fast ranks may finish first).
      all_leased = all_leased && (rank.state == JobState::kLeased || rank.state == JobState::kRunning ||
                                  rank.state == JobState::kSucceeded);
      r.rank_workers.push_back(rank.worker_id);
    }
    if (all_leased && !stored.empty()) {
      r.ready = true;
      r.payload = stored;
      return r;
    }
    std::unique_lock lock(mu_);
    if (stopping_ || std::chrono::steady_clock::now() >= deadline) return r;
    rendezvous_cv_.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(100)));
  }
}

absl::StatusOr<int> Scheduler::ReapExpiredLeases() {
  TimePoint now = clock_->Now();
  ASSIGN_OR_RETURN(auto expired, store_->jobs().ListExpiredLeases(now, 1000));
  int n = 0;
  for (const Job& job : expired) {
    auto ended = EndFailedAttempt(job, FailureClass::kInfrastructure,
                                  absl::StrCat("lease expired: worker ", job.worker_id, " stopped heartbeating"));
    if (ended.status().code() == absl::StatusCode::kFailedPrecondition) continue;  // its gang already failed over
    RETURN_IF_ERROR(ended.status());
    ++n;
    if (metrics_) metrics_->lease_expiries.Increment();
  }
  RETURN_IF_ERROR(store_->workers().MarkLostWorkers(now - options_.worker_lost_after).status());
  return n;
}

void Scheduler::JobEnded(const Job& job) {
  if (listener_) listener_(job);
  NotifyWork();
}

void Scheduler::MaintenanceLoop() {
  auto period = std::max<Duration>(std::chrono::milliseconds(100), options_.lease_duration / 10);
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    auto n = ReapExpiredLeases();
    if (!n.ok()) spdlog::warn("lease reaper: {}", n.status().ToString());
    else if (*n > 0) spdlog::info("lease reaper: {} expired lease(s) returned", *n);
    lock.lock();
    maintenance_cv_.wait_for(lock, period, [&] { return stopping_; });
  }
}

void Scheduler::StartBackground() {
  std::lock_guard lock(mu_);
  if (!dispatchers_.empty()) return;
  for (int i = 0; i < std::max(1, options_.dispatch_threads); ++i) dispatchers_.emplace_back([this] { DispatchLoop(); });
  maintenance_ = std::thread([this] { MaintenanceLoop(); });
}

void Scheduler::Shutdown() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  dispatch_cv_.notify_all();
  waiter_cv_.notify_all();
  rendezvous_cv_.notify_all();
  maintenance_cv_.notify_all();
  for (auto& t : dispatchers_) t.join();
  if (maintenance_.joinable()) maintenance_.join();
}

}  // namespace temper
