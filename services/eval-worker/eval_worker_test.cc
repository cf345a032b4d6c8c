// Unit tests of the eval worker's pieces: payload parsing (explicit samples, programs, extraction,
// a run's eval stage without samples), result summaries (counts, pass@k, the 1 MiB budget), and the
// parallel runner, on fake evaluators and on the real Evaluator over the FakeSandbox.
#include <atomic>
#include <thread>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/rusteval/evaluator.h"
#include "libs/sandbox/fake_sandbox.h"
#include "services/eval-worker/batch.h"
#include "services/eval-worker/runner.h"
#include "services/eval-worker/summary.h"

namespace temper::evalworker {
namespace {

using nlohmann::json;
using rusteval::ErrorClass;
using rusteval::Verdict;
using ::testing::HasSubstr;

std::string FixtureDir() {
  const char* root = std::getenv("TEMPER_SOURCE_DIR");
  return std::string(root ? root : ".") + "/tests/fixtures/rusteval";
}

class PayloadTest : public ::testing::Test {
 protected:
  BenchmarkLibrary lib_{FixtureDir()};
};

TEST_F(PayloadTest, ExplicitSamplesAreLookedUpInTheBenchmark) {
  json p = {{"benchmark", "humaneval-x"},
            {"pass_at_k", {1, 2}},
            {"samples", {{{"task_id", "Rust/0"}, {"completion", "    true\n}\n"}},
                         {{"task_id", "Rust/1"}, {"completion", "    x\n}\n"}},
                         {{"program", "fn main() {}"}, {"id", "hello"}},
                         {{"format", "program"}, {"completion", "fn main() {}"}, {"tests", "#[test] fn t() {}"}}}}};
  auto b = ParseEvalPayload(p.dump(), lib_);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->samples_source, kSourcePayload);
  EXPECT_EQ(b->benchmark, "humaneval-x");
  EXPECT_EQ(b->benchmark_tasks, 164u);
  EXPECT_EQ(b->pass_at_k, (std::vector<int>{1, 2}));
  ASSERT_EQ(b->samples.size(), 4u);
  EXPECT_EQ(b->samples[0].task->id, "Rust/0");
  EXPECT_EQ(b->samples[0].task->format, rusteval::TaskFormat::kHumanEvalX);
  EXPECT_EQ(b->samples[0].completion, "    true\n}\n");
  EXPECT_EQ(b->samples[2].task->id, "hello");
  EXPECT_EQ(b->samples[2].task->format, rusteval::TaskFormat::kProgram);
  EXPECT_EQ(b->samples[3].task->id, "program-3");
  EXPECT_EQ(b->samples[3].task->tests, "#[test] fn t() {}");
}

TEST_F(PayloadTest, FormatPerSampleOverridesTheBenchmark) {
  json p = {{"samples", {{{"task_id", "HumanEval_0_has_close_elements"}, {"format", "multipl-e"}, {"completion", "x"}}}}};
  auto b = ParseEvalPayload(p.dump(), lib_);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->samples[0].task->format, rusteval::TaskFormat::kMultiplE);
}

TEST_F(PayloadTest, ExtractTurnsModelOutputIntoCode) {
  json p = {{"benchmark", "humaneval-x"},
            {"extract", true},
            {"samples", {{{"task_id", "Rust/0"}, {"completion", "Here:\n```rust\n    true\n}\n```\nDone."}},
                         {{"program", "```rust\nfn main() { println!(\"hi\"); }\n```"}}}}};
  auto b = ParseEvalPayload(p.dump(), lib_);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->samples[0].completion, "    true\n}\n");
  EXPECT_EQ(b->samples[1].completion, "fn main() { println!(\"hi\"); }\n");
}

TEST_F(PayloadTest, BadPayloadsAreTheCallersErrors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "not valid JSON"},
      {"[1]", "must be a JSON object"},
      {R"({"samples": 3})", "\"samples\" must be an array"},
      {R"({"samples": []})", "\"samples\" is empty"},
      {R"({"samples": [{"task_id": "Rust/0", "completion": "x"}]})", "names no \"benchmark\""},
      {R"({"benchmark": "humaneval-x", "samples": [{"task_id": "Rust/9999", "completion": "x"}]})",
       "no task \"Rust/9999\""},
      {R"({"benchmark": "humaneval-x", "samples": [{"task_id": "Rust/0"}]})", "\"completion\" must be a string"},
      {R"({"benchmark": "humaneval-x", "samples": [{"task_id": 7, "completion": "x"}]})", "must be a string"},
      {R"({"benchmark": "mbpp", "samples": [{"program": "fn main(){}"}]})", "unknown benchmark \"mbpp\""},
      {R"({"samples": [{"program": "fn main(){}", "completion": "x"}]})", "not both"},
      {R"({"pass_at_k": [0], "samples": [{"program": "fn main(){}"}]})", "pass_at_k"},
      {R"({"config": {"eval": {"timeout_seconds": 0}}, "samples": [{"program": "x"}]})", "timeout_seconds"},
      {R"({"extract": "yes", "samples": [{"program": "x"}]})", "\"extract\""},
  };
  for (const auto& [payload, message] : cases) {
    auto b = ParseEvalPayload(payload, lib_);
    ASSERT_FALSE(b.ok()) << payload;
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument) << payload;
    EXPECT_THAT(std::string(b.status().message()), HasSubstr(message)) << payload;
  }
}

TEST_F(PayloadTest, MissingBenchmarkFilesAreThisMachinesProblem) {
  BenchmarkLibrary empty("/nonexistent-temper-benchmarks");
  auto b = ParseEvalPayload(R"({"benchmark": "humaneval-x", "samples": [{"task_id": "Rust/0", "completion": "x"}]})",
                            empty);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kFailedPrecondition);
}

// What the coordinator writes for a run's eval stage (run_manager.cc), with the defaults applied.
std::string StagePayload(const std::string& benchmark) {
  json config = {{"name", "r"},
                 {"eval",
                  {{"benchmark", benchmark}, {"samples_per_task", 1}, {"pass_at_k", {1}}, {"timeout_seconds", 7},
                   {"memory_mb", 256}}}};
  return json({{"run_id", 3}, {"stage", "final/eval"}, {"round", 1}, {"config", config}, {"input_job_id", 9}}).dump();
}

TEST_F(PayloadTest, RunStageWithoutSamplesEvaluatesReferenceSolutionsAndSaysSo) {
  auto b = ParseEvalPayload(StagePayload("humaneval-x"), lib_, PayloadOptions{5});
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->samples_source, kSourceReferences);
  EXPECT_THAT(b->note, HasSubstr("reference solutions"));
  EXPECT_THAT(b->note, HasSubstr("say nothing about the model"));
  ASSERT_EQ(b->samples.size(), 5u);
  EXPECT_EQ(b->samples[0].completion, b->samples[0].task->canonical_solution);
  EXPECT_EQ(b->timeout_seconds, 7);
  rusteval::EvaluatorOptions o = EvaluatorOptionsFor(*b);
  EXPECT_EQ(o.run_limits.wall_time, std::chrono::seconds(7));
  EXPECT_EQ(o.run_limits.memory_bytes, 256LL << 20);
  EXPECT_EQ(o.check_limits.wall_time, rusteval::EvaluatorOptions().check_limits.wall_time);

  auto all = ParseEvalPayload(StagePayload("humaneval-x"), lib_);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->samples.size(), 164u);
}

TEST_F(PayloadTest, MultiplEHasNoReferencesSoNothingIsEvaluated) {
  auto b = ParseEvalPayload(StagePayload("multipl-e"), lib_);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->samples_source, kSourceNone);
  EXPECT_TRUE(b->samples.empty());
  EXPECT_THAT(b->note, HasSubstr("no reference solutions"));
  auto none = ParseEvalPayload(StagePayload("none"), lib_);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->samples_source, kSourceNone);
}

ResultContext Context(size_t max_bytes, double seconds = 0) {
  ResultContext c;
  c.max_bytes = max_bytes;
  c.seconds = seconds;
  c.worker_id = "w";
  c.parallelism = 2;
  return c;
}

Verdict MakeVerdict(const std::string& task, bool passed, ErrorClass cls = ErrorClass::kNone,
                    sandbox::Limit limit = sandbox::Limit::kNone) {
  Verdict v;
  v.task_id = task;
  v.passed = passed;
  v.compiled = passed || cls == ErrorClass::kTestFailure;
  v.error_class = passed ? ErrorClass::kNone : cls;
  v.limit = limit;
  v.stage_reached = rusteval::Stage::kRunTests;
  v.check_ms = 100;
  v.build_ms = 200;
  v.run_ms = 10;
  v.total_ms = 320;
  if (passed) v.lints["clippy::needless_return"] = 1;
  return v;
}

EvalBatch BatchOf(size_t n) {
  EvalBatch b;
  b.benchmark = "humaneval-x";
  b.benchmark_tasks = 164;
  b.pass_at_k = {1, 2, 5};
  b.samples.resize(n);
  return b;
}

TEST(SummaryTest, CountsEveryClassAndPassAtK) {
  std::vector<Verdict> vs = {
      MakeVerdict("A", true),
      MakeVerdict("A", false, ErrorClass::kBorrow),
      MakeVerdict("B", false, ErrorClass::kTestFailure),
      MakeVerdict("B", false, ErrorClass::kTimeout, sandbox::Limit::kWallTime),
      MakeVerdict("C", false, ErrorClass::kResourceLimit, sandbox::Limit::kMemory),
      MakeVerdict("C", false, ErrorClass::kNoCode),
  };
  json r = SummariseResult(BatchOf(vs.size()), vs, Context(1'000'000, 2.0));
  EXPECT_EQ(r["samples"], 6);
  EXPECT_EQ(r["tasks"], 3);
  EXPECT_EQ(r["counts"]["passed"], 1);
  EXPECT_EQ(r["counts"]["compile_error"], 1);
  EXPECT_EQ(r["counts"]["test_failed"], 1);
  EXPECT_EQ(r["counts"]["timeout"], 1);
  EXPECT_EQ(r["counts"]["resource_limit"], 1);
  EXPECT_EQ(r["counts"]["no_code"], 1);
  EXPECT_EQ(r["error_classes"]["borrow"], 1);
  EXPECT_EQ(r["limit_kills"]["wall_time"], 1);
  EXPECT_EQ(r["limit_kills"]["memory"], 1);
  EXPECT_EQ(r["lints"]["clippy::needless_return"], 1);
  // Task A: 1 of 2 passed → pass@1 = 0.5, pass@2 = 1; B, C: 0. No task has 5 samples.
  EXPECT_NEAR(r["pass_at_k"]["1"].get<double>(), 0.5 / 3, 1e-9);
  EXPECT_NEAR(r["pass_at_k"]["2"].get<double>(), 1.0 / 3, 1e-9);
  EXPECT_FALSE(r["pass_at_k"].contains("5"));
  EXPECT_DOUBLE_EQ(r["samples_per_second"].get<double>(), 3.0);
  EXPECT_EQ(r["verdicts"].size(), 6u);
  EXPECT_EQ(r["verdicts"][3]["outcome"], "timeout");
  EXPECT_EQ(r["verdicts"][3]["index"], 3);
  EXPECT_EQ(r["verdicts_truncated"], false);
  EXPECT_EQ(r["samples_source"], "payload");
}

TEST(SummaryTest, StaysUnderTheByteBudgetAbbreviatingThenTruncating) {
  std::vector<Verdict> vs;
  for (int i = 0; i < 2000; ++i) {
    Verdict v = MakeVerdict("Rust/" + std::to_string(i % 164), false, ErrorClass::kTestFailure);
    v.test_output = std::string(2000, 'x') + "\xff\xfe invalid UTF-8";
    vs.push_back(v);
  }
  for (size_t budget : {size_t{1'000'000}, size_t{100'000}, size_t{3'000}}) {
    json r = SummariseResult(BatchOf(vs.size()), vs, Context(budget));
    std::string dumped = DumpJson(r);
    EXPECT_LE(dumped.size(), budget) << budget;
    EXPECT_EQ(r["counts"]["test_failed"], 2000);
    EXPECT_EQ(r["verdicts_truncated"], true) << budget;
    EXPECT_EQ(r["verdicts"].size(), r["verdicts_included"].get<size_t>());
    EXPECT_TRUE(json::parse(dumped, nullptr, false).is_object());
  }
  json big = SummariseResult(BatchOf(vs.size()), vs, Context(1'000'000));
  EXPECT_GT(big["verdicts_abbreviated"].get<size_t>(), 0u);
  EXPECT_TRUE(big["verdicts"][0].contains("test_output"));            // full
  EXPECT_FALSE(big["verdicts"].back().contains("test_output"));       // abbreviated
  EXPECT_EQ(big["verdicts"].back()["outcome"], "test_failed");
}

RunOptions Parallel(int n, const std::atomic<bool>* stop = nullptr) {
  RunOptions o;
  o.parallelism = n;
  o.stop = stop;
  return o;
}

std::vector<rusteval::Sample> Samples(size_t n) {
  std::vector<rusteval::Sample> out;
  for (size_t i = 0; i < n; ++i) {
    auto t = std::make_shared<rusteval::Task>();
    t->id = "T" + std::to_string(i);
    out.push_back({t, "code"});
  }
  return out;
}

TEST(RunnerTest, EvaluatesEverySampleInParallelAndReportsEachOnce) {
  auto samples = Samples(40);
  std::atomic<int> in_flight{0}, most{0};
  EvaluateFn fake = [&](const rusteval::Sample& s) -> absl::StatusOr<Verdict> {
    int now = ++in_flight;
    int m = most.load();
    while (now > m && !most.compare_exchange_weak(m, now)) {}
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    --in_flight;
    return MakeVerdict(s.task->id, s.task->id.back() % 2 == 0);
  };
  std::vector<int> seen(samples.size(), 0);
  RunOptions o;
  o.parallelism = 4;
  o.on_verdict = [&](size_t i, const Verdict& v) {
    ++seen[i];
    EXPECT_EQ(v.task_id, samples[i].task->id);
  };
  RunOutcome out = RunSamples(samples, fake, o);
  EXPECT_TRUE(out.complete());
  EXPECT_EQ(out.done, 40u);
  EXPECT_FALSE(out.stopped);
  EXPECT_LE(most.load(), 4);
  EXPECT_GT(most.load(), 1);
  for (int s : seen) EXPECT_EQ(s, 1);
}

TEST(RunnerTest, InfrastructureErrorStopsTheBatch) {
  auto samples = Samples(50);
  std::atomic<int> calls{0};
  EvaluateFn fake = [&](const rusteval::Sample& s) -> absl::StatusOr<Verdict> {
    if (++calls == 5) return absl::InternalError("bwrap: setting up uid map: Permission denied");
    return MakeVerdict(s.task->id, true);
  };
  RunOutcome out = RunSamples(samples, fake, Parallel(2));
  EXPECT_FALSE(out.complete());
  EXPECT_THAT(std::string(out.infrastructure.message()), HasSubstr("Permission denied"));
  EXPECT_LT(calls.load(), 10);
  EXPECT_FALSE(out.stopped);
}

TEST(RunnerTest, StopFlagEndsSchedulingAndLeavesTheRestUnrun) {
  auto samples = Samples(100);
  std::atomic<bool> stop{false};
  std::atomic<int> calls{0};
  EvaluateFn fake = [&](const rusteval::Sample& s) -> absl::StatusOr<Verdict> {
    if (++calls == 10) stop = true;
    return MakeVerdict(s.task->id, true);
  };
  RunOutcome out = RunSamples(samples, fake, Parallel(3, &stop));
  EXPECT_TRUE(out.stopped);
  EXPECT_LT(out.done, 20u);
  EXPECT_FALSE(out.verdicts.back().has_value());
}

// The real Evaluator behind the seam, on the FakeSandbox: a compile error and a pass, classified.
TEST(RunnerTest, RealEvaluatorOnTheFakeSandbox) {
  sandbox::FakeSandbox sb;
  sb.On([](const sandbox::Request& r) { return absl::EndsWith(r.argv[0], "/clippy-driver") &&
                                               r.inputs[0].contents.find("broken") != std::string::npos; },
        [](const sandbox::Request&) -> absl::StatusOr<sandbox::Result> {
          sandbox::Result r;
          r.exit_code = 1;
          r.stderr_data =
              R"({"$message_type":"diagnostic","message":"mismatched types","code":{"code":"E0308","explanation":null},"level":"error","spans":[],"children":[],"rendered":"error[E0308]: mismatched types"})";
          return r;
        });
  rusteval::Evaluator evaluator(&sb, rusteval::Toolchain{"/opt/tc", "rustc 1.0"}, rusteval::CrateSet{"/opt/c", {}});
  auto task = std::make_shared<rusteval::Task>();
  task->id = "P";
  task->format = rusteval::TaskFormat::kProgram;
  std::vector<rusteval::Sample> samples = {{task, "fn main() { broken }"}, {task, "fn main() {}"}};
  RunOutcome out = RunSamples(samples, [&](const rusteval::Sample& s) { return evaluator.Evaluate(s); },
                              Parallel(2));
  ASSERT_TRUE(out.complete()) << out.infrastructure;
  EXPECT_EQ(OutcomeName(*out.verdicts[0]), "compile_error");
  EXPECT_EQ(out.verdicts[0]->error_codes, std::vector<std::string>{"E0308"});
  EXPECT_EQ(OutcomeName(*out.verdicts[1]), "passed");
}

}  // namespace
}  // namespace temper::evalworker
