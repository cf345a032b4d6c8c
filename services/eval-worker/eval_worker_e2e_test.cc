// End to end: a real coordinator (against a throwaway PostgreSQL) and a real temper-eval-worker
// process evaluating in bubblewrap sandboxes with the real toolchain.
//   1. A run's final/eval stage (no samples: the benchmark's reference solutions, said so).
//   2. An eval job with explicit known-good and known-broken samples, each classified; SIGTERM
//      while it runs drains: the job completes, then the worker exits 0.
// Skips, printing why, without bwrap, cgroups (root) or the Rust toolchain.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "libs/rusteval/evaluator.h"
#include "libs/sandbox/bwrap_sandbox.h"
#include "libs/sandbox/cgroup.h"
#include "libs/store/testing/pg_test_env.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/harness.h"

namespace temper::e2e {
namespace {

using nlohmann::json;
using std::chrono::seconds;

// Why the real sandbox cannot run here, or "" when it can. Builds the crate cache the worker
// will find (so its start-up is quick and this cost is logged apart).
std::string SkipReason(std::string* crate_cache) {
  auto toolchain = rusteval::FindToolchain();
  if (!toolchain.ok()) return "no Rust toolchain: " + std::string(toolchain.status().message());
  if (auto s = sandbox::CheckBwrapUsable({}); !s.ok()) return "bubblewrap unusable: " + std::string(s.message());
  if (!sandbox::Cgroup::Create("/sys/fs/cgroup", "probe-" + std::to_string(getpid()), {}).ok())
    return "cannot create cgroups under /sys/fs/cgroup (not root?)";
  *crate_cache = std::filesystem::absolute(Binary("crate-cache")).string();
  auto crates = rusteval::EnsureCrates(*toolchain, *crate_cache);
  if (!crates.ok()) return "FAILED to build the crates: " + std::string(crates.status().message());
  return "";
}

// GET http://127.0.0.1:port/metrics, body only ("" on failure).
std::string GetMetrics(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "";
  }
  std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, n);
  close(fd);
  return out;
}

class EvalWorkerE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::string reason = SkipReason(&crate_cache_);
    if (!reason.empty()) GTEST_SKIP() << reason;
    auto& env = testing::PgTestEnv::Get();
    env.Truncate();
    conninfo_ = env.conninfo();
    dir_ = std::filesystem::temp_directory_path() / absl::StrCat("temper-eval-e2e-", getpid(), "-", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    CoordinatorFlags flags;
    flags.database_url = conninfo_;
    flags.port = FreePort();
    flags.lease_seconds = 5;
    address_ = absl::StrCat("127.0.0.1:", flags.port);
    coordinator_ = StartCoordinator(flags, Path("coordinator.log"));
    ASSERT_TRUE(WaitForCoordinator(address_, seconds(30))) << "see " << Path("coordinator.log");
    stub_ = v1::RunService::NewStub(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  std::unique_ptr<Process> StartEvalWorker(int metrics_port) {
    return std::make_unique<Process>(
        std::vector<std::string>{Binary("services/eval-worker/temper-eval-worker"), "--coordinator", address_,
                                 "--parallelism", "2", "--reference-limit", "3", "--crate-cache", crate_cache_,
                                 "--out-dir", Path("verdicts"), "--metrics-listen",
                                 absl::StrCat("127.0.0.1:", metrics_port), "--progress-interval-ms", "500",
                                 "--wait-ms", "500"},
        Path("eval-worker.log"));
  }

  std::vector<v1::Job> Jobs(int64_t run_id) {
    grpc::ClientContext ctx;
    v1::ListJobsRequest req;
    req.set_run_id(run_id);
    v1::ListJobsResponse resp;
    EXPECT_TRUE(stub_->ListJobs(&ctx, req, &resp).ok());
    return {resp.jobs().begin(), resp.jobs().end()};
  }

  std::string JobState(int64_t job_id) {
    pqxx::connection c(conninfo_);
    pqxx::work tx(c);
    return tx.exec1("SELECT state FROM jobs WHERE id = " + std::to_string(job_id))[0].as<std::string>();
  }

  static std::string crate_cache_;
  std::string conninfo_;
  std::filesystem::path dir_;
  std::string address_;
  std::unique_ptr<Process> coordinator_;
  std::unique_ptr<v1::RunService::Stub> stub_;
};
std::string EvalWorkerE2E::crate_cache_;

TEST_F(EvalWorkerE2E, RunStageThenExplicitSamplesThenDrainOnSigterm) {
  const auto t0 = std::chrono::steady_clock::now();
  v1::RunConfig config = TestRunConfig("eval-e2e", /*rounds=*/0, /*gpus=*/0);
  config.mutable_eval()->set_benchmark("humaneval-x");
  auto ids = SubmitRuns(*stub_, {config});
  ASSERT_EQ(ids.size(), 1u);
  auto trainer = StartSimWorkers(address_, 1, "train", 50, Path("sim.log"), "sim");
  const int metrics_port = FreePort();
  auto worker = StartEvalWorker(metrics_port);

  // 1. The run's final/eval stage: reference solutions, said so.
  auto states = WaitTerminal(*stub_, ids, seconds(120));
  ASSERT_EQ(states[ids[0]], v1::RUN_STATE_SUCCEEDED) << "see " << Path("eval-worker.log");
  v1::Job stage_job;
  for (const auto& j : Jobs(ids[0])) {
    if (j.kind() == v1::JOB_KIND_EVAL) stage_job = j;
  }
  ASSERT_NE(stage_job.id(), 0);
  json r = json::parse(stage_job.result_json());
  EXPECT_EQ(r["samples_source"], "reference_solutions");
  EXPECT_NE(r["note"].get<std::string>().find("smoke check"), std::string::npos);
  EXPECT_EQ(r["samples"], 3);
  EXPECT_EQ(r["counts"]["passed"], 3) << r.dump(2);
  EXPECT_DOUBLE_EQ(r["pass_at_k"]["1"].get<double>(), 1.0);
  EXPECT_EQ(r["verdicts"].size(), 3u);
  std::cerr << "run stage done at "
            << std::chrono::duration_cast<seconds>(std::chrono::steady_clock::now() - t0).count() << " s\n";

  // 2. An eval job with explicit samples, queued behind the coordinator's back (no RPC queues
  // a bare job); the dispatcher's periodic scan finds it.
  const std::string has_close_elements_ok =
      "    for i in 0..numbers.len() {\n        for j in 0..numbers.len() {\n"
      "            if i != j && (numbers[i] - numbers[j]).abs() < threshold { return true; }\n"
      "        }\n    }\n    false\n}\n";
  json payload = {
      {"benchmark", "humaneval-x"},
      {"timeout_seconds", 3},
      {"samples",
       {{{"task_id", "Rust/0"}, {"completion", has_close_elements_ok}},
        {{"task_id", "Rust/0"}, {"completion", "    return true;\n}\n"}},
        {{"task_id", "Rust/0"}, {"completion", "    numbers.len()\n}\n"}},
        {{"program", "fn add(a: i32, b: i32) -> i32 { a + b }\nfn main() { println!(\"{}\", add(1, 2)); }\n"},
         {"id", "add"},
         {"tests", "#[cfg(test)]\nmod tests { #[test] fn t() { assert_eq!(super::add(2, 2), 4); } }"}},
        {{"program", "fn main() {}\n"},
         {"id", "hang"},
         {"tests",
          "#[cfg(test)]\nmod tests { #[test] fn t() { loop { "
          "std::thread::sleep(std::time::Duration::from_millis(100)); } } }"}}}}};
  int64_t job_id = 0;
  {
    pqxx::connection c(conninfo_);
    pqxx::work tx(c);
    job_id = tx.exec1(
        "INSERT INTO jobs (run_id, kind, stage, payload, max_attempts, created_at, not_before) "
        "VALUES (" + std::to_string(ids[0]) + ", 'eval', 'adhoc/eval', " + tx.quote(payload.dump()) +
        "::jsonb, 1, now(), now()) RETURNING id")[0].as<int64_t>();
    tx.commit();
  }
  auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (JobState(job_id) == "pending" && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_NE(JobState(job_id), "pending") << "the eval worker never leased the job";
  worker->Signal(SIGTERM);  // drain: finish this job, then exit

  int status = worker->Wait(seconds(90));
  ASSERT_NE(status, -1) << "the worker did not exit after draining; see " << Path("eval-worker.log");
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  ASSERT_EQ(JobState(job_id), "succeeded") << "see " << Path("eval-worker.log");
  v1::Job adhoc;
  for (const auto& j : Jobs(ids[0])) {
    if (j.id() == job_id) adhoc = j;
  }
  json e = json::parse(adhoc.result_json());
  EXPECT_EQ(e["samples_source"], "payload");
  EXPECT_EQ(e["samples"], 5);
  EXPECT_EQ(e["counts"]["passed"], 2) << e.dump(2);
  EXPECT_EQ(e["counts"]["test_failed"], 1);
  EXPECT_EQ(e["counts"]["compile_error"], 1);
  EXPECT_EQ(e["counts"]["timeout"], 1);
  EXPECT_EQ(e["error_classes"]["type_mismatch"], 1);
  EXPECT_EQ(e["limit_kills"]["wall_time"], 1);
  ASSERT_EQ(e["verdicts"].size(), 5u);
  EXPECT_EQ(e["verdicts"][0]["passed"], true);
  EXPECT_EQ(e["verdicts"][2]["error_codes"][0], "E0308");
  EXPECT_EQ(e["verdicts"][4]["limit"], "wall_time");
  // The full verdicts, one JSON line per sample.
  std::ifstream jsonl(e["verdicts_file"].get<std::string>());
  int lines = 0;
  for (std::string line; std::getline(jsonl, line);) lines += json::parse(line).contains("outcome");
  EXPECT_EQ(lines, 5);
  std::cerr << "explicit job done at "
            << std::chrono::duration_cast<seconds>(std::chrono::steady_clock::now() - t0).count() << " s\n";
}

// /metrics while the worker runs (checked apart so a metrics regression names itself).
TEST_F(EvalWorkerE2E, ServesMetrics) {
  const int port = FreePort();
  auto worker = StartEvalWorker(port);
  std::string body;
  for (int i = 0; i < 100 && body.find("temper_eval_samples_total") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    body = GetMetrics(port);
  }
  for (const char* name : {"temper_eval_samples_total", "temper_eval_stage_seconds_bucket",
                           "temper_eval_samples_in_flight"}) {
    EXPECT_NE(body.find(name), std::string::npos) << name << " missing from\n" << body;
  }
  worker->Signal(SIGTERM);
  int status = worker->Wait(seconds(10));
  EXPECT_TRUE(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0) << "idle worker did not drain";
}

}  // namespace
}  // namespace temper::e2e
