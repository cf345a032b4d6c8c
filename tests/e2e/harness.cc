#include "tests/e2e/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace temper::e2e {

Process::Process(std::vector<std::string> argv, const std::string& log_path) {
  pid_ = fork();
  if (pid_ == 0) {
    setpgid(0, 0);
    int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
}

Process::~Process() {
  if (Running()) {
    Signal(SIGKILL);
    Wait(std::chrono::seconds(10));
  }
}

void Process::Signal(int sig) {
  if (pid_ > 0 && !reaped_) kill(pid_, sig);
}

bool Process::Running() {
  if (pid_ <= 0 || reaped_) return false;
  int status;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) reaped_ = true;
  return r == 0;
}

int Process::Wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (reaped_) return 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

std::string Binary(const std::string& relative) {
  const char* dir = std::getenv("TEMPER_BINARY_DIR");
  return absl::StrCat(dir ? dir : ".", "/", relative);
}

std::unique_ptr<Process> StartCoordinator(const CoordinatorFlags& f, const std::string& log) {
  return std::make_unique<Process>(
      std::vector<std::string>{Binary("services/coordinator/temper-coordinator"), "--database-url", f.database_url,
                               "--listen", absl::StrCat("127.0.0.1:", f.port), "--metrics-listen", "",
                               "--lease-seconds", absl::StrCat(f.lease_seconds), "--backoff-base-seconds",
                               absl::StrCat(f.backoff_base_seconds)},
      log);
}

bool WaitForCoordinator(const std::string& address, std::chrono::milliseconds timeout) {
  auto stub = v1::RunService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
    v1::ListRunsRequest req;
    req.set_page_size(1);
    v1::ListRunsResponse resp;
    if (stub->ListRuns(&ctx, req, &resp).ok()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::unique_ptr<Process> StartSimWorkers(const std::string& address, int workers, const std::string& kinds,
                                         int job_ms, const std::string& log, const std::string& name) {
  return std::make_unique<Process>(
      std::vector<std::string>{Binary("tests/sim_worker/sim-worker"), "--coordinator", address, "--workers",
                               std::to_string(workers), "--kinds", kinds, "--job-ms", std::to_string(job_ms),
                               "--log", log, "--name", name, "--wait-ms", "500"},
      log + ".stderr");
}

v1::RunConfig TestRunConfig(const std::string& name, int rounds, int gpus) {
  v1::RunConfig c;
  c.set_name(name);
  c.mutable_model()->set_path("/models/tiny-llama");
  c.mutable_expert_iteration()->set_rounds(rounds);
  if (rounds > 0) c.mutable_data()->add_prompts("prompts.jsonl");
  else c.mutable_data()->add_train_files("train.jsonl");
  c.mutable_resources()->set_gpus(gpus);
  c.mutable_resources()->set_max_attempts(10);
  return c;
}

std::vector<int64_t> SubmitRuns(v1::RunService::Stub& stub, const std::vector<v1::RunConfig>& configs) {
  std::vector<int64_t> ids;
  for (const auto& c : configs) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      v1::SubmitRunRequest req;
      *req.mutable_config() = c;
      req.set_idempotency_key("e2e-" + c.name());
      v1::SubmitRunResponse resp;
      grpc::Status s = stub.SubmitRun(&ctx, req, &resp);
      if (s.ok()) {
        ids.push_back(resp.run().id());
        break;
      }
      EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  return ids;
}

std::map<int64_t, v1::RunState> WaitTerminal(v1::RunService::Stub& stub, const std::vector<int64_t>& ids,
                                             std::chrono::milliseconds timeout) {
  std::map<int64_t, v1::RunState> done;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (done.size() < ids.size() && std::chrono::steady_clock::now() < deadline) {
    for (int64_t id : ids) {
      if (done.contains(id)) continue;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      v1::GetRunRequest req;
      req.set_id(id);
      v1::Run run;
      if (!stub.GetRun(&ctx, req, &run).ok()) break;
      if (run.state() >= v1::RUN_STATE_SUCCEEDED) done[id] = run.state();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return done;
}

std::vector<std::map<std::string, std::string>> ReadJsonLines(const std::string& path) {
  std::vector<std::map<std::string, std::string>> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object()) continue;
    std::map<std::string, std::string> row;
    for (auto& [k, v] : j.items()) row[k] = v.is_string() ? v.get<std::string>() : v.dump();
    out.push_back(std::move(row));
  }
  return out;
}

void ExpectEachJobEndedExactlyOnce(const std::string& conninfo, const std::vector<int64_t>& runs,
                                   const std::vector<std::string>& worker_logs) {
  std::map<int64_t, int> accepted;                // job -> accepted completions
  std::map<int64_t, std::set<int64_t>> accepted_epochs;
  for (const auto& log : worker_logs) {
    for (const auto& row : ReadJsonLines(log)) {
      if (row.count("outcome") && row.at("outcome") == "complete" && row.at("status") == "OK") {
        int64_t job = std::stoll(row.at("job"));
        ++accepted[job];
        accepted_epochs[job].insert(std::stoll(row.at("epoch")));
      }
    }
  }
  pqxx::connection c(conninfo);
  pqxx::read_transaction tx(c);
  auto rows = tx.exec("SELECT id, state, epoch, attempts FROM jobs WHERE run_id = ANY('{" +
                      absl::StrJoin(runs, ",") + "}'::bigint[]) ORDER BY id");
  ASSERT_GT(rows.size(), 0u);
  for (const auto& r : rows) {
    int64_t id = r[0].as<int64_t>();
    EXPECT_EQ(r[1].as<std::string>(), "succeeded") << "job " << id;
    // A completion may be accepted twice only when the first reply was lost and the worker retried
    // the same epoch (idempotent); different epochs would mean two owners.
    EXPECT_GE(accepted[id], 1) << "job " << id << " succeeded without an accepted completion";
    EXPECT_EQ(accepted_epochs[id].size(), 1u) << "job " << id << " completed under two epochs";
    if (!accepted_epochs[id].empty()) {
      EXPECT_EQ(*accepted_epochs[id].begin(), r[2].as<int64_t>()) << "job " << id;
    }
  }
}

}  // namespace temper::e2e
