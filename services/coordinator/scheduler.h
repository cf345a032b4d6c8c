// Scheduler: leases jobs to workers and keeps every lease honest. It owns no state of its own
// beyond waiters in memory; every transition is a committed Store transaction, fenced by the
// lease's epoch. Time comes from an injected Clock so leases and backoff are tested without sleeps.
// Thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "libs/common/clock.h"
#include "libs/metrics/metrics.h"
#include "libs/store/store.h"

namespace temper {

struct SchedulerOptions {
  Duration lease_duration = std::chrono::seconds(30);
  Duration heartbeat_interval = std::chrono::seconds(10);
  Duration backoff_base = std::chrono::seconds(1);   // first retry waits this long, then doubles
  Duration backoff_max = std::chrono::seconds(60);
  Duration worker_lost_after = std::chrono::seconds(90);
  Duration max_acquire_wait = std::chrono::seconds(30);
  int dispatch_batch = 256;  // most waiters served by one store transaction
  int dispatch_threads = 4;  // dispatch passes in flight at once (their scans SKIP LOCKED each other)
};

// What a heartbeat tells the worker about each lease it named.
struct HeartbeatResult {
  std::vector<Lease> extended;
  std::vector<Lease> cancelled;  // stop: the run was cancelled
  std::vector<Lease> lost;       // stop without reporting: the lease is stale or gone
  TimePoint lease_expires_at;
};

struct RendezvousResult {
  bool ready = false;
  std::string payload;
  int32_t world_size = 0;
  std::vector<std::string> rank_workers;
};

// Called after a job reached a terminal state or went back to pending, with the job as stored.
using JobListener = std::function<void(const Job&)>;

class Scheduler {
 public:
  // `store`, `clock` and `metrics` (may be null) must outlive the scheduler.
  Scheduler(Store* store, Clock* clock, CoordinatorMetrics* metrics, SchedulerOptions options = {});
  ~Scheduler();

  void SetJobListener(JobListener listener) { listener_ = std::move(listener); }

  // Registers (or re-registers) a worker; assigns an id when worker.id is empty.
  absl::StatusOr<Worker> RegisterWorker(Worker worker);

  // Leases one job to the worker: at once if one fits, else waits up to `wait` (capped) for work to
  // arrive. Returns nullopt when the wait ends without a job. NotFound for an unknown worker.
  absl::StatusOr<std::optional<Job>> AcquireJob(const std::string& worker_id, Duration wait);

  // One pass of dispatch for waiting workers; the long poll runs it on its own thread, tests call
  // it directly. Returns how many jobs were leased.
  absl::StatusOr<int> DispatchOnce();

  // Extends each named lease; reports the ones cancelled or lost.
  absl::StatusOr<HeartbeatResult> Heartbeat(const std::string& worker_id, const std::vector<Lease>& leases);

  // Records progress under a held lease (fenced). Returns whether the run asked to cancel.
  absl::StatusOr<bool> ReportProgress(const Lease& lease, int64_t step,
                                      const std::map<std::string, double>& metrics,
                                      const std::string& message, double fraction);

  // Ends the attempt successfully; registers the checkpoint it produced, if any.
  absl::StatusOr<Job> CompleteJob(const Lease& lease, const std::string& result_json,
                                  const std::optional<Checkpoint>& checkpoint);

  // Ends the attempt with a failure; the class and the attempts left decide whether it is retried.
  // A gang fails over as one. Returns the job as stored (pending when it will be retried).
  absl::StatusOr<Job> FailJob(const Lease& lease, FailureClass failure_class, const std::string& error);

  // Gang rendezvous: rank 0 posts `payload`; every rank gets it once all ranks hold leases.
  // Waits up to `wait` for readiness.
  absl::StatusOr<RendezvousResult> Rendezvous(const Lease& lease, const std::string& payload, Duration wait);

  // Returns expired leases to pending (or fails them when out of attempts), marks silent workers
  // lost. Returns how many leases expired. Runs periodically on the maintenance thread.
  absl::StatusOr<int> ReapExpiredLeases();

  // Wakes waiting workers: new jobs may be ready.
  void NotifyWork();

  // Starts the dispatcher and maintenance threads (production); tests drive the passes by hand.
  void StartBackground();
  // Stops background threads and releases every waiter with no job.
  void Shutdown();

  const SchedulerOptions& options() const { return options_; }

 private:
  struct Waiter {
    WorkerOffer offer;
    std::optional<Job> job;
    bool done = false;     // answered (with job set when one was leased)
    bool claimed = false;  // a dispatch pass is leasing for this waiter now
    bool tried = false;    // the dispatcher has seen it at least once
  };

  Duration Backoff(int32_t attempts) const;
  // The worker's capabilities: from the in-memory cache, else from the store.
  absl::StatusOr<WorkerOffer> OfferOf(const std::string& worker_id);
  // Ends a held attempt after a failure or expiry: retry with backoff or fail for good.
  absl::StatusOr<Job> EndFailedAttempt(const Job& job, FailureClass failure_class, const std::string& error);
  void JobEnded(const Job& job);
  void DispatchLoop();
  void MaintenanceLoop();

  Store* store_;
  Clock* clock_;
  CoordinatorMetrics* metrics_;
  SchedulerOptions options_;
  JobListener listener_;

  std::mutex mu_;
  std::condition_variable dispatch_cv_;   // wakes the dispatcher
  std::condition_variable waiter_cv_;     // wakes waiting AcquireJob calls
  std::condition_variable rendezvous_cv_;
  std::condition_variable maintenance_cv_;
  std::deque<std::shared_ptr<Waiter>> waiters_;  // GUARDED_BY(mu_)
  std::map<std::string, WorkerOffer> offers_;    // GUARDED_BY(mu_); registered workers
  uint64_t work_generation_ = 0;                 // GUARDED_BY(mu_); bumped by NotifyWork
  bool stopping_ = false;                        // GUARDED_BY(mu_)
  std::vector<std::thread> dispatchers_;
  std::thread maintenance_;
};

}  // namespace temper
