#include "libs/store/types.h"

#include <algorithm>
#include <array>
#include <string_view>
#include <utility>

namespace temper {
namespace {

template <typename E, size_t N>
const char* NameOf(const std::array<std::pair<E, const char*>, N>& table, E value) {
  for (const auto& [e, name] : table) {
    if (e == value) return name;
  }
  return "unknown";
}

template <typename E, size_t N>
std::optional<E> ValueOf(const std::array<std::pair<E, const char*>, N>& table, std::string_view s) {
  for (const auto& [e, name] : table) {
    if (s == name) return e;
  }
  return std::nullopt;
}

constexpr std::array<std::pair<JobKind, const char*>, 3> kJobKinds = {
    {{JobKind::kTrain, "train"}, {JobKind::kGenerate, "generate"}, {JobKind::kEval, "eval"}}};
constexpr std::array<std::pair<JobState, const char*>, 6> kJobStates = {
    {{JobState::kPending, "pending"},
     {JobState::kLeased, "leased"},
     {JobState::kRunning, "running"},
     {JobState::kSucceeded, "succeeded"},
     {JobState::kFailed, "failed"},
     {JobState::kCancelled, "cancelled"}}};
constexpr std::array<std::pair<RunState, const char*>, 5> kRunStates = {
    {{RunState::kPending, "pending"},
     {RunState::kRunning, "running"},
     {RunState::kSucceeded, "succeeded"},
     {RunState::kFailed, "failed"},
     {RunState::kCancelled, "cancelled"}}};
constexpr std::array<std::pair<FailureClass, const char*>, 6> kFailureClasses = {
    {{FailureClass::kNone, ""},
     {FailureClass::kInfrastructure, "infrastructure"},
     {FailureClass::kOom, "oom"},
     {FailureClass::kUserError, "user_error"},
     {FailureClass::kPreempted, "preempted"},
     {FailureClass::kResult, "result"}}};

}  // namespace

const char* ToString(JobKind k) { return NameOf(kJobKinds, k); }
const char* ToString(JobState s) { return NameOf(kJobStates, s); }
const char* ToString(RunState s) { return NameOf(kRunStates, s); }
const char* ToString(FailureClass c) { return NameOf(kFailureClasses, c); }
std::optional<JobKind> ParseJobKind(std::string_view s) { return ValueOf(kJobKinds, s); }
std::optional<JobState> ParseJobState(std::string_view s) { return ValueOf(kJobStates, s); }
std::optional<RunState> ParseRunState(std::string_view s) { return ValueOf(kRunStates, s); }
std::optional<FailureClass> ParseFailureClass(std::string_view s) { return ValueOf(kFailureClasses, s); }

const char* EventType(const AttemptOutcome& outcome) {
  switch (outcome.kind) {
    case AttemptOutcome::Kind::kSucceed: return "job_succeeded";
    case AttemptOutcome::Kind::kFail: return "job_failed";
    case AttemptOutcome::Kind::kRequeue: return "job_retrying";
    case AttemptOutcome::Kind::kCancel: return "job_cancelled";
  }
  return "job_failed";
}

bool WorkerOffer::Fits(const Job& job) const {
  return std::find(kinds.begin(), kinds.end(), job.kind) != kinds.end() &&
         job.requirements.gpus <= gpus && job.requirements.gpu_memory_mb <= gpu_memory_mb &&
         job.requirements.cpu_cores <= cpu_cores;
}

}  // namespace temper
