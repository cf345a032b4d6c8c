#include "libs/rusteval/evaluator.h"

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libs/rusteval/test_util.h"
#include "libs/sandbox/fake_sandbox.h"

namespace temper::rusteval {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using sandbox::FakeSandbox;
using sandbox::Request;
using sandbox::Result;

bool IsClippy(const Request& r) { return absl::EndsWith(r.argv[0], "/clippy-driver"); }
bool IsRustc(const Request& r) { return absl::EndsWith(r.argv[0], "/rustc"); }
bool IsTestRun(const Request& r) { return r.argv[0] == "/work/t"; }

Result Exited(int code, std::string out = "", std::string err = "") {
  Result r;
  r.exit_code = code;
  r.stdout_data = std::move(out);
  r.stderr_data = std::move(err);
  return r;
}

class EvaluatorTest : public ::testing::Test {
 protected:
  EvaluatorTest()
      : evaluator_(&sandbox_, Toolchain{"/root/.rustup/toolchains/stable", "rustc 1.95.0"},
                   CrateSet{"/cache/crates/deps", {{"rand", "librand-1.rlib"}, {"regex", "libregex-2.rlib"}}}) {
    task_ = std::make_shared<Task>();
    task_->id = "Rust/0";
    task_->format = TaskFormat::kHumanEvalX;
    task_->declaration = "fn f() -> i32 {\n";
    task_->tests = "#[cfg(test)]\nmod tests { #[test] fn t() { assert_eq!(super::f(), 1); } }";
  }
  void BuildSucceeds() {
    sandbox_.On(IsRustc, [](const Request&) {
      Result r = Exited(0);
      r.collected["t"] = "\x7f" "ELF test binary";
      return r;
    });
  }
  FakeSandbox sandbox_;
  Evaluator evaluator_;
  std::shared_ptr<Task> task_;
};

TEST_F(EvaluatorTest, StageOneIsOneClippyPassWithJsonAndCappedLints) {
  sandbox_.On(IsClippy, [](const Request&) { return Exited(1, "", testing::ReadFixture("diagnostics/mismatch.json")); });
  auto v = evaluator_.Evaluate({task_, "    \"one\"\n}"});
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_EQ(sandbox_.requests().size(), 1u);
  const auto reqs = sandbox_.requests();
  const Request& check = reqs[0];
  EXPECT_EQ(check.argv[0], "/opt/rust/bin/clippy-driver");
  for (const char* flag : {"--emit=metadata", "--error-format=json", "2021", "lib", "src.rs",
                           "rand=/opt/crates/librand-1.rlib", "dependency=/opt/crates"}) {
    EXPECT_THAT(check.argv, Contains(flag)) << flag;
  }
  EXPECT_THAT(check.argv, Contains("--cap-lints"));
  for (const auto& [k, value] : check.env) EXPECT_NE(k, "RUSTC_BOOTSTRAP");
  ASSERT_EQ(check.inputs.size(), 1u);
  EXPECT_EQ(check.inputs[0].contents, "fn f() -> i32 {\n    \"one\"\n}\n");
  EXPECT_EQ(v->stage_reached, Stage::kCheck);
  EXPECT_FALSE(v->compiled);
  EXPECT_EQ(v->error_class, ErrorClass::kTypeMismatch);
  EXPECT_EQ(v->error_codes, std::vector<std::string>{"E0308"});
  ASSERT_TRUE(v->syntax.has_value());
  EXPECT_EQ(v->syntax->functions, 1);
}

TEST_F(EvaluatorTest, PassingSampleBuildsTestsHandsTheBinaryOverAndRunsSingleThreaded) {
  sandbox_.On(IsClippy, [](const Request&) { return Exited(0, "", testing::ReadFixture("diagnostics/lints.json")); });
  BuildSucceeds();
  sandbox_.On(IsTestRun, [](const Request&) {
    return Exited(0, "running 1 test\ntest tests::t ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored\n");
  });
  auto v = evaluator_.Evaluate({task_, "    1\n}"});
  ASSERT_TRUE(v.ok()) << v.status();
  auto reqs = sandbox_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_THAT(reqs[1].argv, Contains("--test"));
  EXPECT_EQ(reqs[1].collect, std::vector<std::string>{"t"});
  EXPECT_THAT(reqs[1].inputs[0].contents, HasSubstr("#[cfg(test)]"));
  EXPECT_THAT(reqs[2].argv, Contains("--test-threads=1"));
  ASSERT_EQ(reqs[2].inputs.size(), 1u);
  EXPECT_TRUE(reqs[2].inputs[0].executable);
  EXPECT_EQ(reqs[2].inputs[0].contents, "\x7f" "ELF test binary");
  EXPECT_LT(reqs[2].limits.memory_bytes, reqs[1].limits.memory_bytes);
  EXPECT_TRUE(v->passed);
  EXPECT_EQ(v->stage_reached, Stage::kRunTests);
  EXPECT_EQ(v->tests_passed, 1);
  EXPECT_EQ(v->lints["clippy::needless_return"], 1);
}

TEST_F(EvaluatorTest, FailingTestsAreCountedAndClassified) {
  BuildSucceeds();
  sandbox_.On(IsTestRun, [](const Request&) {
    return Exited(101, "test a ... ok\ntest b ... FAILED\n\ntest result: FAILED. 1 passed; 1 failed; 0 ignored\n");
  });
  auto v = evaluator_.Evaluate({task_, "    2\n}"});
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->passed);
  EXPECT_TRUE(v->compiled);
  EXPECT_EQ(v->error_class, ErrorClass::kTestFailure);
  EXPECT_EQ(v->tests_passed, 1);
  EXPECT_EQ(v->tests_failed, 1);
  EXPECT_THAT(v->test_output, HasSubstr("FAILED"));
}

TEST_F(EvaluatorTest, LimitsAreClassesOfTheirOwnWithTheirStage) {
  BuildSucceeds();
  sandbox_.On(IsTestRun, [](const Request&) {
    Result r;
    r.limit = sandbox::Limit::kWallTime;
    r.signal = 9;
    return r;
  });
  auto v = evaluator_.Evaluate({task_, "    loop {}\n}"});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->error_class, ErrorClass::kTimeout);
  EXPECT_EQ(v->limit, sandbox::Limit::kWallTime);
  EXPECT_EQ(v->limit_stage, Stage::kRunTests);

  FakeSandbox oom;
  oom.On(IsClippy, [](const Request&) {
    Result r;
    r.limit = sandbox::Limit::kMemory;
    r.signal = 9;
    return r;
  });
  Evaluator e(&oom, Toolchain{}, CrateSet{});
  auto w = e.Evaluate({task_, "    1\n}"});
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->error_class, ErrorClass::kResourceLimit);
  EXPECT_EQ(w->limit_stage, Stage::kCheck);
}

TEST_F(EvaluatorTest, MultiplEBuildsAPlainBinaryWhoseExitStatusIsTheTest) {
  auto me = std::make_shared<Task>();
  me->format = TaskFormat::kMultiplE;
  me->prompt = "fn f() -> i32 {\n";
  me->tests = "\n}\nfn main() { assert_eq!(f(), 1); }";
  BuildSucceeds();
  sandbox_.On(IsTestRun, [](const Request&) { return Exited(101, "", "assertion failed"); });
  auto v = evaluator_.Evaluate({me, "    2"});
  ASSERT_TRUE(v.ok());
  auto reqs = sandbox_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_THAT(reqs[0].argv, Contains("bin"));
  EXPECT_THAT(reqs[1].argv, Not(Contains("--test")));
  EXPECT_THAT(reqs[2].argv, Not(Contains("--test-threads=1")));
  EXPECT_EQ(v->tests_failed, 1);
  EXPECT_EQ(v->error_class, ErrorClass::kTestFailure);
}

TEST_F(EvaluatorTest, EmptyCompletionIsNoCodeAndNeverSandboxed) {
  auto v = evaluator_.Evaluate({task_, "  \n"});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->error_class, ErrorClass::kNoCode);
  EXPECT_TRUE(sandbox_.requests().empty());
}

TEST_F(EvaluatorTest, SandboxFailureIsAnErrorNotAVerdict) {
  sandbox_.On(IsClippy, [](const Request&) -> absl::StatusOr<Result> { return absl::InternalError("bwrap"); });
  EXPECT_FALSE(evaluator_.Evaluate({task_, "    1\n}"}).ok());
}

TEST(ParseTestCountsTest, SummaryOrPerTestLines) {
  EXPECT_EQ(ParseTestCounts("test result: ok. 5 passed; 0 failed; 1 ignored"), std::make_pair(5, 0));
  EXPECT_EQ(ParseTestCounts("test a ... ok\ntest b ... FAILED\nthread panicked"), std::make_pair(1, 1));
}

}  // namespace
}  // namespace temper::rusteval
