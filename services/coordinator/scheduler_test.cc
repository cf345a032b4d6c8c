// Scheduler and run state machine on the in-memory store with a hand-advanced clock: leases,
// expiry, backoff, fencing, failure classes, cancellation and gangs, without a single sleep.
#include "services/coordinator/scheduler.h"

#include <gtest/gtest.h>

#include "libs/config/run_config.h"
#include "libs/store/mem_store.h"
#include "services/coordinator/run_manager.h"

namespace temper {
namespace {

using std::chrono::seconds;

class SchedulerTest : public ::testing::Test {
 protected:
  SchedulerTest() : store_(NewMemStore()), sched_(store_.get(), &clock_, nullptr, Options()), runs_(store_.get(), &clock_, &sched_) {
    sched_.SetJobListener([this](const Job& j) { ASSERT_TRUE(runs_.Reconcile(j.run_id).ok()); });
  }

  static SchedulerOptions Options() {
    SchedulerOptions o;
    o.lease_duration = seconds(30);
    o.backoff_base = seconds(2);
    o.backoff_max = seconds(10);
    return o;
  }

  std::string AddWorker(const std::string& id, std::vector<JobKind> kinds, int32_t gpus = 0) {
    Worker w;
    w.id = id;
    w.kinds = kinds;
    w.gpus = gpus;
    w.gpu_memory_mb = gpus * 81920;
    w.cpu_cores = 4;
    auto r = sched_.RegisterWorker(w);
    EXPECT_TRUE(r.ok()) << r.status();
    return r->id;
  }

  // A run with only a final eval (rounds 0 would train; use a train-free plan via benchmark).
  temper::Run SubmitEvalOnly(int32_t max_attempts = 3) {
    v1::RunConfig c;
    c.set_name("eval-only");
    c.mutable_model()->set_path("/models/tiny");
    c.mutable_expert_iteration()->set_rounds(1);
    c.mutable_data()->add_prompts("prompts.jsonl");
    c.mutable_resources()->set_max_attempts(max_attempts);
    c.mutable_resources()->set_gpus(0);
    auto run = runs_.Submit(c, "");
    if (!run.ok()) {
      ADD_FAILURE() << run.status() << "\n" << ValidateRunConfig(c);
      return {};
    }
    return *run;
  }

  std::optional<Job> Acquire(const std::string& worker) {
    auto r = sched_.AcquireJob(worker, Duration::zero());
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : std::nullopt;
  }

  FakeClock clock_;
  std::unique_ptr<Store> store_;
  Scheduler sched_;
  RunManager runs_;
};

TEST_F(SchedulerTest, RunWalksThroughItsStages) {
  AddWorker("gpu", {JobKind::kTrain, JobKind::kGenerate}, 1);
  AddWorker("cpu", {JobKind::kEval});
  temper::Run run = SubmitEvalOnly();
  EXPECT_EQ(store_->runs().GetRun(run.id)->state, RunState::kRunning);
  std::vector<std::string> seen;
  for (int i = 0; i < 4; ++i) {
    auto job = Acquire("gpu");
    if (!job) job = Acquire("cpu");
    ASSERT_TRUE(job) << "stage " << i;
    seen.push_back(job->stage);
    ASSERT_TRUE(sched_.CompleteJob({job->id, job->epoch}, "{}", std::nullopt).ok());
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"r0/generate", "r0/eval", "r0/train", "final/eval"}));
  EXPECT_EQ(store_->runs().GetRun(run.id)->state, RunState::kSucceeded);
}

TEST_F(SchedulerTest, UnknownWorkerCannotAcquire) {
  EXPECT_EQ(sched_.AcquireJob("ghost", Duration::zero()).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SchedulerTest, ExpiredLeaseReturnsWithExponentialBackoffThenFails) {
  AddWorker("gpu", {JobKind::kGenerate}, 1);
  temper::Run run = SubmitEvalOnly(/*max_attempts=*/3);
  std::vector<int64_t> epochs;
  // Attempt 1 expires -> retry after 2s; attempt 2 expires -> retry after 4s; attempt 3 -> failed.
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto job = Acquire("gpu");
    ASSERT_TRUE(job) << "attempt " << attempt;
    EXPECT_EQ(job->attempts, attempt);
    epochs.push_back(job->epoch);
    clock_.Advance(seconds(31));
    auto n = sched_.ReapExpiredLeases();
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, 1);
    if (attempt < 3) {
      Duration backoff = seconds(2 << (attempt - 1));
      clock_.Advance(backoff - seconds(1));
      EXPECT_FALSE(Acquire("gpu")) << "backoff not honoured on attempt " << attempt;
      clock_.Advance(seconds(1));
    }
  }
  EXPECT_LT(epochs[0], epochs[1]);
  EXPECT_LT(epochs[1], epochs[2]);
  auto jobs = store_->jobs().ListJobs({run.id, {}, 10});
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ((*jobs)[0].state, JobState::kFailed);
  EXPECT_EQ(store_->runs().GetRun(run.id)->state, RunState::kFailed);
}

TEST_F(SchedulerTest, HeartbeatsKeepALeaseAlive) {
  AddWorker("gpu", {JobKind::kGenerate}, 1);
  SubmitEvalOnly();
  auto job = Acquire("gpu");
  ASSERT_TRUE(job);
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(seconds(20));
    auto hb = sched_.Heartbeat("gpu", {{job->id, job->epoch}});
    ASSERT_TRUE(hb.ok());
    EXPECT_EQ(hb->extended.size(), 1u);
    EXPECT_EQ(*sched_.ReapExpiredLeases(), 0);
  }
  EXPECT_EQ(store_->jobs().GetJob(job->id)->state, JobState::kRunning);
}

TEST_F(SchedulerTest, ZombieWorkerIsFencedOut) {
  AddWorker("a", {JobKind::kGenerate}, 1);
  AddWorker("b", {JobKind::kGenerate}, 1);
  SubmitEvalOnly();
  auto first = Acquire("a");
  clock_.Advance(seconds(31));
  ASSERT_EQ(*sched_.ReapExpiredLeases(), 1);
  clock_.Advance(seconds(5));
  auto second = Acquire("b");
  ASSERT_TRUE(second);
  Lease zombie{first->id, first->epoch};
  EXPECT_EQ(sched_.CompleteJob(zombie, R"({"from":"zombie"})", std::nullopt).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(sched_.FailJob(zombie, FailureClass::kOom, "x").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(sched_.ReportProgress(zombie, 1, {}, "", 0.5).status().code(), absl::StatusCode::kFailedPrecondition);
  auto hb = sched_.Heartbeat("a", {zombie});
  ASSERT_TRUE(hb.ok());
  EXPECT_EQ(hb->lost.size(), 1u);
  auto now = store_->jobs().GetJob(first->id);
  EXPECT_EQ(now->worker_id, "b");
  EXPECT_EQ(now->state, JobState::kLeased);
  ASSERT_TRUE(sched_.CompleteJob({second->id, second->epoch}, R"({"from":"b"})", std::nullopt).ok());
  EXPECT_EQ(store_->jobs().GetJob(first->id)->result_json, R"({"from":"b"})");
}

TEST_F(SchedulerTest, FailureClassDecidesRetry) {
  AddWorker("gpu", {JobKind::kGenerate}, 1);
  temper::Run run = SubmitEvalOnly(/*max_attempts=*/2);
  auto job = Acquire("gpu");
  // Preemption does not count as an attempt.
  auto pre = sched_.FailJob({job->id, job->epoch}, FailureClass::kPreempted, "spot reclaimed");
  ASSERT_TRUE(pre.ok());
  EXPECT_EQ(pre->state, JobState::kPending);
  EXPECT_EQ(pre->attempts, 0);
  clock_.Advance(seconds(3));
  job = Acquire("gpu");
  ASSERT_TRUE(job);
  EXPECT_EQ(job->attempts, 1);
  // OOM is retried.
  auto oom = sched_.FailJob({job->id, job->epoch}, FailureClass::kOom, "CUDA out of memory");
  EXPECT_EQ(oom->state, JobState::kPending);
  clock_.Advance(seconds(3));
  job = Acquire("gpu");
  ASSERT_TRUE(job);
  // A user error is never retried, even with attempts left.
  auto user = sched_.FailJob({job->id, job->epoch}, FailureClass::kUserError, "bad model path");
  EXPECT_EQ(user->state, JobState::kFailed);
  EXPECT_EQ(store_->runs().GetRun(run.id)->state, RunState::kFailed);
  EXPECT_NE(store_->runs().GetRun(run.id)->error.find("bad model path"), std::string::npos);
}

TEST_F(SchedulerTest, CancelReachesTheWorkerInItsNextHeartbeat) {
  AddWorker("gpu", {JobKind::kGenerate}, 1);
  temper::Run run = SubmitEvalOnly();
  auto job = Acquire("gpu");
  ASSERT_TRUE(job);
  ASSERT_TRUE(runs_.Cancel(run.id, "changed my mind").ok());
  EXPECT_EQ(store_->runs().GetRun(run.id)->state, RunState::kRunning);  // its job still runs
  auto hb = sched_.Heartbeat("gpu", {{job->id, job->epoch}});
  ASSERT_TRUE(hb.ok());
  ASSERT_EQ(hb->cancelled.size(), 1u);
  EXPECT_EQ(store_->jobs().GetJob(job->id)->state, JobState::kCancelled);
  EXPECT_EQ(store_->runs().GetRun(run.id)->state, RunState::kCancelled);
  EXPECT_FALSE(Acquire("gpu"));
}

TEST_F(SchedulerTest, GangStartsOnlyWhenAllRanksAreLeasedAndFailsOverTogether) {
  for (int i = 0; i < 3; ++i) AddWorker("g" + std::to_string(i), {JobKind::kTrain}, 1);
  v1::RunConfig c;
  c.set_name("gang");
  c.mutable_model()->set_path("/models/tiny");
  c.mutable_expert_iteration()->set_rounds(0);
  c.mutable_data()->add_train_files("train.jsonl");
  c.mutable_resources()->set_gpus(3);
  c.mutable_eval()->set_benchmark("none");
  auto run = runs_.Submit(c, "");
  ASSERT_TRUE(run.ok()) << run.status();
  auto r0 = Acquire("g0");
  auto r1 = Acquire("g1");
  ASSERT_TRUE(r0 && r1);
  ASSERT_EQ(r0->rank, 0);
  std::string uid(128, '\x7f');
  auto rv = sched_.Rendezvous({r0->id, r0->epoch}, uid, Duration::zero());
  ASSERT_TRUE(rv.ok()) << rv.status();
  EXPECT_FALSE(rv->ready);  // rank 2 is not leased yet
  auto r2 = Acquire("g2");
  ASSERT_TRUE(r2);
  for (const auto& r : {*r0, *r1, *r2}) {
    auto ready = sched_.Rendezvous({r.id, r.epoch}, "", Duration::zero());
    ASSERT_TRUE(ready.ok());
    EXPECT_TRUE(ready->ready);
    EXPECT_EQ(ready->payload, uid);
    EXPECT_EQ(ready->world_size, 3);
    EXPECT_EQ(ready->rank_workers, (std::vector<std::string>{"g0", "g1", "g2"}));
  }
  // Rank 1 dies: its lease expires while the others keep heartbeating; the whole gang goes back.
  clock_.Advance(seconds(20));
  ASSERT_TRUE(sched_.Heartbeat("g0", {{r0->id, r0->epoch}}).ok());
  ASSERT_TRUE(sched_.Heartbeat("g2", {{r2->id, r2->epoch}}).ok());
  clock_.Advance(seconds(15));
  ASSERT_EQ(*sched_.ReapExpiredLeases(), 1);
  auto gang = store_->jobs().GetGang(r0->gang_id);
  for (const auto& j : *gang) EXPECT_EQ(j.state, JobState::kPending) << "rank " << j.rank;
  auto hb = sched_.Heartbeat("g0", {{r0->id, r0->epoch}});
  EXPECT_EQ(hb->lost.size(), 1u);
  EXPECT_EQ(sched_.Rendezvous({r2->id, r2->epoch}, "", Duration::zero()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(SchedulerTest, ReconcileIsIdempotentAfterACrash) {
  AddWorker("gpu", {JobKind::kGenerate}, 1);
  temper::Run run = SubmitEvalOnly();
  // A second coordinator (or a restart) reconciling again must not enqueue the stage twice.
  RunManager other(store_.get(), &clock_, nullptr);
  ASSERT_TRUE(other.ReconcileAll().ok());
  ASSERT_TRUE(other.ReconcileAll().ok());
  EXPECT_EQ(store_->jobs().ListJobs({run.id, {}, 10})->size(), 1u);
}

TEST_F(SchedulerTest, InvalidConfigIsRejectedAndNothingStored) {
  v1::RunConfig c;
  c.set_name("x'; DROP TABLE runs;--");
  auto r = runs_.Submit(c, "");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(store_->runs().ListRuns({})->empty());
}

}  // namespace
}  // namespace temper
