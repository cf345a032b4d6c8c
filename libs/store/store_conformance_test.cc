// One conformance suite for every Store: built twice, against MemStore (unit) and PgStore on a
// throwaway PostgreSQL cluster (pg). Both must behave identically.
#include <gtest/gtest.h>

#include <set>

#include "libs/store/mem_store.h"
#include "libs/store/store.h"
#if TEMPER_STORE_PG
#include "libs/store/migrations.h"
#include "libs/store/pg_store.h"
#include "libs/store/testing/pg_test_env.h"
#endif

namespace temper {
namespace {

using std::chrono::seconds;

class StoreConformance : public ::testing::Test {
 protected:
  void SetUp() override {
#if TEMPER_STORE_PG
    {
      auto& env = testing::PgTestEnv::Get();
      env.Truncate();
      auto store = OpenPgStore(env.conninfo(), 4);
      ASSERT_TRUE(store.ok()) << store.status();
      store_ = std::move(*store);
    }
#else
    store_ = NewMemStore();
#endif
  }

  temper::Run MakeRun(const std::string& name = "run", int32_t priority = 0) {
    auto run = store_->runs().CreateRun({name, R"({"name":"x"})", "", priority, 1}, clock_.Now());
    EXPECT_TRUE(run.ok()) << run.status();
    return *run;
  }

  int64_t Enqueue(int64_t run_id, const std::string& stage, JobKind kind = JobKind::kEval,
                  int32_t priority = 0, Requirements req = {}) {
    NewJob nj;
    nj.run_id = run_id;
    nj.kind = kind;
    nj.stage = stage;
    nj.priority = priority;
    nj.requirements = req;
    auto ids = store_->jobs().EnqueueJobs({nj}, clock_.Now());
    EXPECT_TRUE(ids.ok()) << ids.status();
    return ids->empty() ? 0 : ids->front();
  }

  WorkerOffer Offer(const std::string& id, std::vector<JobKind> kinds = {JobKind::kEval},
                    int32_t gpus = 0, int32_t cpus = 2) {
    return {id, kinds, gpus, gpus * 80000, cpus};
  }

  std::optional<Job> AcquireOne(const WorkerOffer& offer) {
    auto r = store_->jobs().AcquireJobs({offer}, clock_.Now(), clock_.Now() + seconds(30));
    EXPECT_TRUE(r.ok()) << r.status();
    return r->front();
  }

  FakeClock clock_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreConformance, CreateAndGetRun) {
  temper::Run run = MakeRun("alpha");
  auto got = store_->runs().GetRun(run.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->name, "alpha");
  EXPECT_EQ(got->state, RunState::kPending);
  EXPECT_EQ(got->created_at, clock_.Now());
  EXPECT_EQ(store_->runs().GetRun(run.id + 1000).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreConformance, IdempotencyKeyReturnsTheSameRun) {
  auto a = store_->runs().CreateRun({"a", "{}", "key-1", 0, 1}, clock_.Now());
  auto b = store_->runs().CreateRun({"b", "{}", "key-1", 0, 1}, clock_.Now());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->id, b->id);
  EXPECT_EQ(b->name, "a");
}

TEST_F(StoreConformance, NamesWithSqlMetacharactersAreStoredVerbatim) {
  std::string name = "x'; DROP TABLE runs;-- \"\\";
  temper::Run run = MakeRun(name);
  EXPECT_EQ(store_->runs().GetRun(run.id)->name, name);
  RunFilter f;
  f.name_prefix = "x'";
  EXPECT_EQ(store_->runs().ListRuns(f)->size(), 1u);
}

TEST_F(StoreConformance, ListRunsFiltersAndPages) {
  for (int i = 0; i < 5; ++i) MakeRun(i % 2 ? "odd" : "even");
  RunFilter f;
  f.limit = 2;
  auto page1 = store_->runs().ListRuns(f);
  ASSERT_TRUE(page1.ok());
  ASSERT_EQ(page1->size(), 2u);
  EXPECT_GT((*page1)[0].id, (*page1)[1].id);
  f.before_id = page1->back().id;
  auto page2 = store_->runs().ListRuns(f);
  ASSERT_EQ(page2->size(), 2u);
  EXPECT_LT((*page2)[0].id, page1->back().id);
  RunFilter by_name;
  by_name.name_prefix = "od";
  EXPECT_EQ(store_->runs().ListRuns(by_name)->size(), 2u);
  ASSERT_TRUE(store_->runs().SetRunState((*page1)[0].id, RunState::kRunning, "", clock_.Now()).ok());
  RunFilter running;
  running.states = {RunState::kRunning};
  EXPECT_EQ(store_->runs().ListRuns(running)->size(), 1u);
}

TEST_F(StoreConformance, RoundOnlyMovesForward) {
  temper::Run run = MakeRun();
  ASSERT_TRUE(store_->runs().AdvanceRound(run.id, 2, clock_.Now()).ok());
  ASSERT_TRUE(store_->runs().AdvanceRound(run.id, 1, clock_.Now()).ok());
  EXPECT_EQ(store_->runs().GetRun(run.id)->round, 2);
  EXPECT_EQ(store_->runs().AdvanceRound(run.id + 7, 1, clock_.Now()).code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreConformance, TerminalRunStateIsFinal) {
  temper::Run run = MakeRun();
  ASSERT_TRUE(store_->runs().SetRunState(run.id, RunState::kSucceeded, "", clock_.Now()).ok());
  auto again = store_->runs().SetRunState(run.id, RunState::kFailed, "late", clock_.Now());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->state, RunState::kSucceeded);
  EXPECT_EQ(store_->runs().ListActiveRuns()->size(), 0u);
}

TEST_F(StoreConformance, EnqueueSameStageTwiceIsHarmless) {
  temper::Run run = MakeRun();
  EXPECT_NE(Enqueue(run.id, "r0/eval"), 0);
  EXPECT_EQ(Enqueue(run.id, "r0/eval"), 0);
  EXPECT_EQ(store_->jobs().ListJobs({run.id, {}, 100})->size(), 1u);
  EXPECT_EQ(store_->runs().GetRun(run.id)->jobs_total, 1);
}

TEST_F(StoreConformance, AcquireByPriorityThenFifoWithIncreasingEpochs) {
  temper::Run run = MakeRun();
  int64_t low1 = Enqueue(run.id, "a", JobKind::kEval, 0);
  int64_t high = Enqueue(run.id, "b", JobKind::kEval, 5);
  int64_t low2 = Enqueue(run.id, "c", JobKind::kEval, 0);
  std::vector<int64_t> order, epochs;
  for (int i = 0; i < 3; ++i) {
    auto job = AcquireOne(Offer("w" + std::to_string(i)));
    ASSERT_TRUE(job.has_value());
    EXPECT_EQ(job->state, JobState::kLeased);
    EXPECT_EQ(job->attempts, 1);
    EXPECT_EQ(job->worker_id, "w" + std::to_string(i));
    order.push_back(job->id);
    epochs.push_back(job->epoch);
  }
  EXPECT_EQ(order, (std::vector<int64_t>{high, low1, low2}));
  EXPECT_LT(epochs[0], epochs[1]);
  EXPECT_LT(epochs[1], epochs[2]);
  EXPECT_FALSE(AcquireOne(Offer("w9")).has_value());
  auto counts = store_->jobs().CountJobs();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->at(std::make_pair(JobKind::kEval, JobState::kLeased)), 3);
}

TEST_F(StoreConformance, AcquireMatchesRequirements) {
  temper::Run run = MakeRun();
  int64_t train = Enqueue(run.id, "train", JobKind::kTrain, 9, {1, 40000, 0});
  int64_t eval = Enqueue(run.id, "eval", JobKind::kEval, 0, {0, 0, 2});
  // A CPU worker cannot take the train job even though it has higher priority.
  auto cpu = store_->jobs().AcquireJobs({Offer("cpu", {JobKind::kEval}, 0, 1), Offer("cpu2")},
                                        clock_.Now(), clock_.Now() + seconds(30));
  ASSERT_TRUE(cpu.ok());
  EXPECT_FALSE((*cpu)[0].has_value());  // needs 2 cores
  ASSERT_TRUE((*cpu)[1].has_value());
  EXPECT_EQ((*cpu)[1]->id, eval);
  auto gpu = AcquireOne(Offer("gpu", {JobKind::kTrain, JobKind::kGenerate}, 1));
  ASSERT_TRUE(gpu.has_value());
  EXPECT_EQ(gpu->id, train);
}

TEST_F(StoreConformance, NotBeforeDelaysAJob) {
  temper::Run run = MakeRun();
  Enqueue(run.id, "a");
  auto job = AcquireOne(Offer("w"));
  ASSERT_TRUE(job);
  AttemptOutcome requeue;
  requeue.kind = AttemptOutcome::Kind::kRequeue;
  requeue.not_before = clock_.Now() + seconds(10);
  requeue.failure_class = FailureClass::kInfrastructure;
  ASSERT_TRUE(store_->jobs().FinishAttempt({job->id, job->epoch}, requeue, clock_.Now()).ok());
  EXPECT_FALSE(AcquireOne(Offer("w")).has_value());
  clock_.Advance(seconds(11));
  auto again = AcquireOne(Offer("w2"));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->attempts, 2);
  EXPECT_GT(again->epoch, job->epoch);
}

TEST_F(StoreConformance, StaleEpochIsRefusedAndChangesNothing) {
  temper::Run run = MakeRun();
  Enqueue(run.id, "a");
  auto first = AcquireOne(Offer("w1"));
  ASSERT_TRUE(first);
  AttemptOutcome requeue;
  requeue.kind = AttemptOutcome::Kind::kRequeue;
  requeue.not_before = clock_.Now();
  ASSERT_TRUE(store_->jobs().FinishAttempt({first->id, first->epoch}, requeue, clock_.Now()).ok());
  auto second = AcquireOne(Offer("w2"));
  ASSERT_TRUE(second);
  Lease zombie{first->id, first->epoch};
  AttemptOutcome done;
  done.result_json = R"({"zombie":true})";
  EXPECT_EQ(store_->jobs().FinishAttempt(zombie, done, clock_.Now()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->jobs().ExtendLease(zombie, clock_.Now(), clock_.Now() + seconds(30)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto now = store_->jobs().GetJob(first->id);
  EXPECT_EQ(now->state, JobState::kLeased);
  EXPECT_EQ(now->worker_id, "w2");
  EXPECT_EQ(now->epoch, second->epoch);
  EXPECT_TRUE(now->result_json.empty());
}

TEST_F(StoreConformance, SuccessIsIdempotentUnderTheSameEpoch) {
  temper::Run run = MakeRun();
  Enqueue(run.id, "a");
  auto job = AcquireOne(Offer("w"));
  AttemptOutcome done;
  done.result_json = R"({"ok":1})";
  done.event_message = "finished";
  auto a = store_->jobs().FinishAttempt({job->id, job->epoch}, done, clock_.Now());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->state, JobState::kSucceeded);
  auto events = store_->runs().ListEvents(run.id, 0, 10);
  ASSERT_EQ(events->size(), 1u);  // written with the transition, not after it
  EXPECT_EQ((*events)[0].type, "job_succeeded");
  EXPECT_EQ((*events)[0].job_id, job->id);
  EXPECT_TRUE(store_->jobs().FinishAttempt({job->id, job->epoch}, done, clock_.Now()).ok());
  AttemptOutcome fail;
  fail.kind = AttemptOutcome::Kind::kFail;
  EXPECT_EQ(store_->jobs().FinishAttempt({job->id, job->epoch}, fail, clock_.Now()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(StoreConformance, ExtendLeaseMarksRunningAndExpiryIsListed) {
  temper::Run run = MakeRun();
  Enqueue(run.id, "a");
  auto job = AcquireOne(Offer("w"));
  auto ext = store_->jobs().ExtendLease({job->id, job->epoch}, clock_.Now(), clock_.Now() + seconds(60));
  ASSERT_TRUE(ext.ok());
  EXPECT_EQ(ext->state, JobState::kRunning);
  clock_.Advance(seconds(45));
  EXPECT_TRUE(store_->jobs().ListExpiredLeases(clock_.Now(), 10)->empty());
  clock_.Advance(seconds(30));
  auto expired = store_->jobs().ListExpiredLeases(clock_.Now(), 10);
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_EQ((*expired)[0].epoch, job->epoch);
}

TEST_F(StoreConformance, PreemptionRefundsTheAttempt) {
  temper::Run run = MakeRun();
  Enqueue(run.id, "a");
  auto job = AcquireOne(Offer("w"));
  AttemptOutcome pre;
  pre.kind = AttemptOutcome::Kind::kRequeue;
  pre.failure_class = FailureClass::kPreempted;
  pre.refund_attempt = true;
  pre.not_before = clock_.Now();
  auto r = store_->jobs().FinishAttempt({job->id, job->epoch}, pre, clock_.Now());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->attempts, 0);
  EXPECT_EQ(r->state, JobState::kPending);
  EXPECT_EQ(r->failure_class, FailureClass::kPreempted);
}

TEST_F(StoreConformance, CancelCancelsPendingAndFlagsLeased) {
  temper::Run run = MakeRun();
  int64_t leased = Enqueue(run.id, "a");
  int64_t pending = Enqueue(run.id, "b");
  auto job = AcquireOne(Offer("w"));
  ASSERT_EQ(job->id, leased);
  auto r = store_->runs().RequestCancel(run.id, "user asked", clock_.Now());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->cancel_requested);
  EXPECT_EQ(store_->jobs().GetJob(pending)->state, JobState::kCancelled);
  EXPECT_TRUE(store_->jobs().GetJob(leased)->cancel_requested);
  EXPECT_EQ(store_->runs().RequestCancel(run.id + 99, "", clock_.Now()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(StoreConformance, GangRanksShareAGangAndFailOverTogether) {
  temper::Run run = MakeRun();
  NewJob nj;
  nj.run_id = run.id;
  nj.kind = JobKind::kTrain;
  nj.stage = "r0/train";
  nj.world_size = 3;
  nj.requirements.gpus = 1;
  auto ids = store_->jobs().EnqueueJobs({nj}, clock_.Now());
  ASSERT_EQ(ids->size(), 3u);
  auto gang = store_->jobs().GetGang(ids->front());
  ASSERT_EQ(gang->size(), 3u);
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ((*gang)[r].rank, r);
    EXPECT_EQ((*gang)[r].world_size, 3);
    EXPECT_EQ((*gang)[r].gang_id, ids->front());
  }
  auto r0 = AcquireOne(Offer("g0", {JobKind::kTrain}, 1));
  auto r1 = AcquireOne(Offer("g1", {JobKind::kTrain}, 1));
  ASSERT_TRUE(r0 && r1);
  EXPECT_EQ(store_->jobs().SetRendezvous({r1->id, r1->epoch}, "x").code(), absl::StatusCode::kInvalidArgument);
  std::string uid("\x00\x01nccl\xff", 7);
  ASSERT_TRUE(store_->jobs().SetRendezvous({r0->id, r0->epoch}, uid).ok());
  EXPECT_EQ(*store_->jobs().GetRendezvous(r0->gang_id), uid);
  AttemptOutcome requeue;
  requeue.kind = AttemptOutcome::Kind::kRequeue;
  requeue.not_before = clock_.Now() + seconds(5);
  requeue.error = "rank 1 lost";
  EXPECT_EQ(store_->jobs().FinishGang({r1->id, r1->epoch + 1000}, requeue, clock_.Now()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto after = store_->jobs().FinishGang({r1->id, r1->epoch}, requeue, clock_.Now());
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ(after->size(), 3u);
  for (const auto& j : *after) EXPECT_EQ(j.state, JobState::kPending);
  EXPECT_EQ(*store_->jobs().GetRendezvous(r0->gang_id), "");
  EXPECT_EQ(store_->jobs().ExtendLease({r0->id, r0->epoch}, clock_.Now(), clock_.Now()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(StoreConformance, WorkersRegisterAndGetLost) {
  Worker w;
  w.id = "gpu-1";
  w.hostname = "h100";
  w.kinds = {JobKind::kTrain, JobKind::kGenerate};
  w.gpus = 1;
  w.gpu_memory_mb = 81920;
  w.gpu_models = {"NVIDIA H100 80GB HBM3"};
  ASSERT_TRUE(store_->workers().UpsertWorker(w, clock_.Now()).ok());
  auto got = store_->workers().GetWorker("gpu-1");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->kinds, w.kinds);
  EXPECT_EQ(got->gpu_models, w.gpu_models);
  clock_.Advance(seconds(100));
  ASSERT_TRUE(store_->workers().TouchWorker("gpu-1", "busy", clock_.Now()).ok());
  EXPECT_EQ(*store_->workers().MarkLostWorkers(clock_.Now() - seconds(10)), 0);
  clock_.Advance(seconds(100));
  EXPECT_EQ(*store_->workers().MarkLostWorkers(clock_.Now() - seconds(10)), 1);
  EXPECT_EQ(store_->workers().GetWorker("gpu-1")->state, "lost");
  EXPECT_EQ(store_->workers().TouchWorker("nope", "idle", clock_.Now()).code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreConformance, CheckpointLineageFollowsParents) {
  temper::Run run = MakeRun();
  Checkpoint c0;
  c0.run_id = run.id;
  c0.uri = "file:///ckpt/0";
  c0.metrics = {{"loss", 1.5}};
  auto a = store_->checkpoints().AddCheckpoint(c0, clock_.Now());
  ASSERT_TRUE(a.ok()) << a.status();
  Checkpoint c1 = c0;
  c1.parent_id = a->id;
  c1.uri = "file:///ckpt/1";
  c1.round = 1;
  auto b = store_->checkpoints().AddCheckpoint(c1, clock_.Now());
  Checkpoint c2 = c0;
  c2.parent_id = b->id;
  c2.uri = "file:///ckpt/2";
  auto c = store_->checkpoints().AddCheckpoint(c2, clock_.Now());
  ASSERT_TRUE(c.ok());
  auto lineage = store_->checkpoints().GetLineage(c->id);
  ASSERT_TRUE(lineage.ok()) << lineage.status();
  ASSERT_EQ(lineage->size(), 3u);
  EXPECT_EQ((*lineage)[0].id, c->id);
  EXPECT_EQ((*lineage)[1].id, b->id);
  EXPECT_EQ((*lineage)[2].id, a->id);
  EXPECT_EQ((*lineage)[2].depth, 2);
  EXPECT_EQ((*lineage)[2].metrics.at("loss"), 1.5);
  Checkpoint orphan = c0;
  orphan.parent_id = 9999;
  EXPECT_EQ(store_->checkpoints().AddCheckpoint(orphan, clock_.Now()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->checkpoints().ListCheckpoints(run.id)->size(), 3u);
  EXPECT_EQ(store_->checkpoints().GetLineage(424242).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreConformance, EventsAndMetrics) {
  temper::Run run = MakeRun();
  for (int i = 0; i < 3; ++i) {
    RunEvent e;
    e.run_id = run.id;
    e.at = clock_.Now();
    e.type = "progress";
    e.message = "step " + std::to_string(i);
    e.progress = 0.25 * i;
    e.metrics = {{"loss", 2.0 - i}};
    auto id = store_->runs().AppendEvent(e);
    ASSERT_TRUE(id.ok()) << id.status();
  }
  auto all = store_->runs().ListEvents(run.id, 0, 100);
  ASSERT_EQ(all->size(), 3u);
  auto tail = store_->runs().ListEvents(run.id, (*all)[0].id, 100);
  ASSERT_EQ(tail->size(), 2u);
  EXPECT_EQ((*tail)[1].metrics.at("loss"), 0.0);
  EXPECT_DOUBLE_EQ((*tail)[0].progress, 0.25);
  ASSERT_TRUE(store_->runs().RecordMetrics({{run.id, 0, 2, "loss", 1.0}, {run.id, 0, 1, "loss", 2.0}}).ok());
  auto m = store_->runs().ListMetrics(run.id);
  ASSERT_EQ(m->size(), 2u);
  EXPECT_EQ((*m)[0].step, 1);
  EXPECT_EQ(store_->runs().RecordMetrics({{run.id + 50, 0, 1, "loss", 1.0}}).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace temper
