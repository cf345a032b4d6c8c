// Domain types of temper's control plane. These, not the generated protos, are what the store and
// the scheduler speak; services convert at their edge (see services/coordinator/convert.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "libs/common/clock.h"

namespace temper {

enum class JobKind { kTrain = 1, kGenerate = 2, kEval = 3 };
enum class JobState { kPending = 1, kLeased = 2, kRunning = 3, kSucceeded = 4, kFailed = 5, kCancelled = 6 };
enum class RunState { kPending = 1, kRunning = 2, kSucceeded = 3, kFailed = 4, kCancelled = 5 };
enum class FailureClass { kNone = 0, kInfrastructure = 1, kOom = 2, kUserError = 3, kPreempted = 4, kResult = 5 };

const char* ToString(JobKind k);
const char* ToString(JobState s);
const char* ToString(RunState s);
const char* ToString(FailureClass c);
std::optional<JobKind> ParseJobKind(std::string_view s);
std::optional<JobState> ParseJobState(std::string_view s);
std::optional<RunState> ParseRunState(std::string_view s);
std::optional<FailureClass> ParseFailureClass(std::string_view s);
inline bool IsTerminal(JobState s) { return s == JobState::kSucceeded || s == JobState::kFailed || s == JobState::kCancelled; }
inline bool IsTerminal(RunState s) { return s == RunState::kSucceeded || s == RunState::kFailed || s == RunState::kCancelled; }

struct Requirements {
  int32_t gpus = 0;
  int64_t gpu_memory_mb = 0;
  int32_t cpu_cores = 0;
};

struct Run {
  int64_t id = 0;
  std::string name;
  RunState state = RunState::kPending;
  std::string config_json;  // the validated RunConfig as proto3 JSON
  std::string idempotency_key;
  int32_t priority = 0;
  int32_t total_rounds = 0;
  int32_t round = 0;
  bool cancel_requested = false;
  std::string error;
  TimePoint created_at;
  TimePoint updated_at;
  int32_t jobs_total = 0;  // filled by GetRun/ListRuns
  int32_t jobs_done = 0;
};

struct NewRun {
  std::string name;
  std::string config_json;
  std::string idempotency_key;  // empty: none
  int32_t priority = 0;
  int32_t total_rounds = 0;
};

struct RunFilter {
  std::vector<RunState> states;  // empty: all
  std::string name_prefix;
  int32_t limit = 50;
  int64_t before_id = 0;  // paging: runs with id < before_id (0: from the newest)
};

struct Job {
  int64_t id = 0;
  int64_t run_id = 0;
  JobKind kind = JobKind::kEval;
  std::string stage;  // unique within a run with rank, e.g. "r0/generate"
  int32_t round = 0;
  JobState state = JobState::kPending;
  Requirements requirements;
  int32_t priority = 0;
  int32_t attempts = 0;
  int32_t max_attempts = 3;
  int64_t epoch = 0;
  std::string worker_id;
  std::string payload_json;
  std::string result_json;
  FailureClass failure_class = FailureClass::kNone;
  std::string error;
  int64_t gang_id = 0;  // 0: not part of a gang; else the id of the gang's rank-0 job
  int32_t rank = 0;
  int32_t world_size = 1;
  bool cancel_requested = false;
  TimePoint created_at;
  TimePoint not_before;
  std::optional<TimePoint> lease_expires_at;
  std::optional<TimePoint> started_at;
  std::optional<TimePoint> finished_at;
};

struct NewJob {
  int64_t run_id = 0;
  JobKind kind = JobKind::kEval;
  std::string stage;
  int32_t round = 0;
  Requirements requirements;
  int32_t priority = 0;
  int32_t max_attempts = 3;
  std::string payload_json = "{}";
  int32_t world_size = 1;  // > 1: a gang of world_size rank jobs is created
};

struct JobFilter {
  int64_t run_id = 0;  // 0: all
  std::vector<JobState> states;
  int32_t limit = 100;
};

// A lease names a job and the fencing epoch it was granted under.
struct Lease {
  int64_t job_id = 0;
  int64_t epoch = 0;
  friend bool operator==(const Lease&, const Lease&) = default;
};

struct Worker {
  std::string id;
  std::string hostname;
  std::vector<JobKind> kinds;
  int32_t gpus = 0;
  int64_t gpu_memory_mb = 0;
  int32_t cpu_cores = 0;
  std::vector<std::string> gpu_models;
  std::string state = "idle";  // idle | busy | lost
  TimePoint registered_at;
  TimePoint last_heartbeat;
};

// What a waiting worker can take: its id and capabilities.
struct WorkerOffer {
  std::string worker_id;
  std::vector<JobKind> kinds;
  int32_t gpus = 0;
  int64_t gpu_memory_mb = 0;
  int32_t cpu_cores = 0;
  bool Fits(const Job& job) const;
};

// How an attempt ends. Exactly one outcome per fenced release.
struct AttemptOutcome {
  enum class Kind { kSucceed, kFail, kRequeue, kCancel } kind = Kind::kSucceed;
  std::string result_json;
  FailureClass failure_class = FailureClass::kNone;
  std::string error;
  TimePoint not_before;         // kRequeue: earliest next lease
  bool refund_attempt = false;  // kRequeue after preemption: the attempt does not count
  // When set, a run event (type job_succeeded/job_failed/job_retrying/job_cancelled) with this
  // message is written in the same transaction, so the log never disagrees with the jobs.
  std::string event_message;
};

// The run-event type recorded for an attempt's outcome.
const char* EventType(const AttemptOutcome& outcome);

struct RunEvent {
  int64_t id = 0;
  int64_t run_id = 0;
  int64_t job_id = 0;
  TimePoint at;
  std::string type;
  std::string message;
  double progress = -1;  // < 0: unknown
  std::map<std::string, double> metrics;
};

struct Checkpoint {
  int64_t id = 0;
  int64_t run_id = 0;
  int64_t parent_id = 0;  // 0: from the base model
  int64_t job_id = 0;
  std::string uri;
  int64_t step = 0;
  int32_t round = 0;
  std::map<std::string, double> metrics;
  TimePoint created_at;
  int32_t depth = 0;  // in a lineage answer
};

struct MetricPoint {
  int64_t run_id = 0;
  int64_t job_id = 0;
  int64_t step = 0;
  std::string name;
  double value = 0;
};

}  // namespace temper
