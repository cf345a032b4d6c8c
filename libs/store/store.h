// The Store: every piece of control-plane state, one small interface per aggregate. Each method is
// one committed transaction, so the coordinator holds no state of its own between restarts.
// Implementations: PgStore (PostgreSQL, libs/store/pg_store.h) and MemStore (in-memory fake,
// libs/store/mem_store.h); one conformance suite (store_conformance_test.cc) runs against both.
// All implementations are thread-safe.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "libs/common/status.h"
#include "libs/store/types.h"

namespace temper {

class RunStore {
 public:
  virtual ~RunStore() = default;
  // Creates a run. With an idempotency key already used, returns the existing run instead.
  virtual absl::StatusOr<Run> CreateRun(const NewRun& run, TimePoint now) = 0;
  // NotFound when no run has this id.
  virtual absl::StatusOr<Run> GetRun(int64_t id) = 0;
  // Newest first.
  virtual absl::StatusOr<std::vector<Run>> ListRuns(const RunFilter& filter) = 0;
  // Moves a non-terminal run to `state` (with `error` for failures). A terminal run is left as is
  // and returned unchanged.
  virtual absl::StatusOr<Run> SetRunState(int64_t id, RunState state, const std::string& error,
                                          TimePoint now) = 0;
  // Records the expert-iteration round a non-terminal run has reached (never moves backwards).
  virtual absl::Status AdvanceRound(int64_t id, int32_t round, TimePoint now) = 0;
  // Marks the run cancel-requested; its pending jobs become cancelled at once and its leased or
  // running jobs are flagged so their workers learn it in their next heartbeat.
  virtual absl::StatusOr<Run> RequestCancel(int64_t id, const std::string& reason, TimePoint now) = 0;
  // Non-terminal runs, oldest first: the coordinator reconciles these at start and after changes.
  virtual absl::StatusOr<std::vector<Run>> ListActiveRuns() = 0;
  virtual absl::StatusOr<int64_t> AppendEvent(const RunEvent& event) = 0;
  // Events of a run with id > after_id, oldest first, at most `limit`.
  virtual absl::StatusOr<std::vector<RunEvent>> ListEvents(int64_t run_id, int64_t after_id,
                                                           int32_t limit) = 0;
  virtual absl::Status RecordMetrics(const std::vector<MetricPoint>& points) = 0;
  virtual absl::StatusOr<std::vector<MetricPoint>> ListMetrics(int64_t run_id) = 0;
};

class JobStore {
 public:
  virtual ~JobStore() = default;
  // Creates jobs; a NewJob with world_size N > 1 creates a gang of N rank jobs. A job whose
  // (run_id, stage, rank) exists already is skipped, so enqueueing a stage twice is harmless.
  // Returns the ids of the jobs created.
  virtual absl::StatusOr<std::vector<int64_t>> EnqueueJobs(const std::vector<NewJob>& jobs,
                                                           TimePoint now) = 0;
  // Leases pending, ready jobs to the offered workers in one transaction: highest priority first,
  // FIFO within a priority, each to the first offer (in order) whose capabilities fit. Every lease
  // takes a new, globally increasing epoch. Result i is the job leased to offers[i], if any.
  virtual absl::StatusOr<std::vector<std::optional<Job>>> AcquireJobs(
      const std::vector<WorkerOffer>& offers, TimePoint now, TimePoint lease_until) = 0;
  // Extends a held lease to `until` and marks the job running. FailedPrecondition when the epoch is
  // stale or the job is no longer leased or running; nothing changes then.
  virtual absl::StatusOr<Job> ExtendLease(const Lease& lease, TimePoint now, TimePoint until) = 0;
  // Ends the attempt named by `lease` with `outcome`. FailedPrecondition (nothing changes) when the
  // epoch is stale; a repeated identical success is accepted (the reply may have been lost).
  virtual absl::StatusOr<Job> FinishAttempt(const Lease& lease, const AttemptOutcome& outcome,
                                            TimePoint now) = 0;
  // Jobs whose lease expired before `now`, with the epoch they expired under.
  virtual absl::StatusOr<std::vector<Job>> ListExpiredLeases(TimePoint now, int32_t limit) = 0;
  virtual absl::StatusOr<Job> GetJob(int64_t id) = 0;
  virtual absl::StatusOr<std::vector<Job>> ListJobs(const JobFilter& filter) = 0;
  // How many jobs there are per (kind, state), for the metrics gauges.
  virtual absl::StatusOr<std::map<std::pair<JobKind, JobState>, int64_t>> CountJobs() = 0;
  // The rank jobs of a gang, by rank.
  virtual absl::StatusOr<std::vector<Job>> GetGang(int64_t gang_id) = 0;
  // Stores the rendezvous payload of a gang at its current set of epochs (rank 0 posts it).
  virtual absl::Status SetRendezvous(const Lease& rank0, const std::string& payload) = 0;
  virtual absl::StatusOr<std::string> GetRendezvous(int64_t gang_id) = 0;
  // Ends the current attempt of every rank of the gang together with `outcome` (each at its own
  // current epoch), so a gang always fails over as one. `trigger` is the lease of the rank that
  // failed or expired; FailedPrecondition (nothing changes) when it is stale.
  virtual absl::StatusOr<std::vector<Job>> FinishGang(const Lease& trigger, const AttemptOutcome& outcome,
                                                      TimePoint now) = 0;
};

class WorkerStore {
 public:
  virtual ~WorkerStore() = default;
  // Inserts or refreshes a worker (same id: capabilities replaced, state idle).
  virtual absl::StatusOr<Worker> UpsertWorker(const Worker& worker, TimePoint now) = 0;
  virtual absl::StatusOr<Worker> GetWorker(const std::string& id) = 0;
  virtual absl::Status TouchWorker(const std::string& id, const std::string& state, TimePoint now) = 0;
  virtual absl::StatusOr<std::vector<Worker>> ListWorkers() = 0;
  // Marks workers silent since before `cutoff` as lost; returns how many changed.
  virtual absl::StatusOr<int> MarkLostWorkers(TimePoint cutoff) = 0;
};

class CheckpointStore {
 public:
  virtual ~CheckpointStore() = default;
  // InvalidArgument when parent_id names no checkpoint.
  virtual absl::StatusOr<Checkpoint> AddCheckpoint(const Checkpoint& checkpoint, TimePoint now) = 0;
  virtual absl::StatusOr<std::vector<Checkpoint>> ListCheckpoints(int64_t run_id) = 0;
  // The checkpoint, then its parent, grandparent, ... (depth 0, 1, 2, ...). NotFound if absent.
  virtual absl::StatusOr<std::vector<Checkpoint>> GetLineage(int64_t checkpoint_id) = 0;
};

// The four aggregates of one database.
class Store {
 public:
  virtual ~Store() = default;
  virtual RunStore& runs() = 0;
  virtual JobStore& jobs() = 0;
  virtual WorkerStore& workers() = 0;
  virtual CheckpointStore& checkpoints() = 0;
};

}  // namespace temper
