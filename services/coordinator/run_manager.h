// RunManager: the run state machine. A run is a plan of stages derived from its config — per
// expert-iteration round: generate, eval, train (a gang when resources.gpus > 1) — then a final
// eval. Reconcile() derives the next step from the jobs in the store, so it is idempotent and a
// coordinator that crashed anywhere picks up exactly where the database says it was.
// Thread-safe; reconciliation of dirty runs happens on one background thread.
#pragma once

#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "libs/common/clock.h"
#include "libs/store/store.h"
#include "temper/v1/config.pb.h"

namespace temper {

class Scheduler;

// One stage of a run's plan.
struct Stage {
  std::string name;  // unique within the run, e.g. "r0/generate", "final/eval"
  JobKind kind;
  int32_t round;
};

// The stages a config asks for, in order.
std::vector<Stage> PlanStages(const v1::RunConfig& config);

class RunManager {
 public:
  // `store`, `clock` and `scheduler` must outlive the manager.
  RunManager(Store* store, Clock* clock, Scheduler* scheduler);
  ~RunManager();

  // Validates and stores a run, then queues its first stage. InvalidArgument (nothing stored) when
  // the config is invalid.
  absl::StatusOr<Run> Submit(const v1::RunConfig& config, const std::string& idempotency_key);
  absl::StatusOr<Run> Cancel(int64_t run_id, const std::string& reason);

  // Brings one run up to date with its jobs: enqueue the next stage, or finish the run.
  absl::Status Reconcile(int64_t run_id);
  // Reconciles every active run (at start, after a crash).
  absl::Status ReconcileAll();

  // Queues a run for reconciliation on the background thread.
  void MarkDirty(int64_t run_id);
  void StartBackground();
  void Shutdown();

 private:
  void Loop();
  void Emit(int64_t run_id, const std::string& type, const std::string& message, double progress = -1);

  Store* store_;
  Clock* clock_;
  Scheduler* scheduler_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<int64_t> dirty_;  // GUARDED_BY(mu_)
  bool stopping_ = false;    // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace temper
