// End to end: the built `temper` binary against the real coordinator binary (embedded
// PostgreSQL on a temporary data directory). Skipped, with the reason, when the coordinator was
// not built.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

#ifndef TEMPER_COORDINATOR_BINARY
#define TEMPER_COORDINATOR_BINARY ""
#endif

extern char** environ;

namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

// Starts `argv` with stdout and stderr to the given files; returns its pid (or -1).
pid_t Spawn(const std::vector<std::string>& argv, const fs::path& out, const fs::path& err,
            const std::vector<std::string>& extra_env = {}) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e)
    if (std::string_view(*e).substr(0, 19) != "TEMPER_COORDINATOR=") env_strings.push_back(*e);
  env_strings.insert(env_strings.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> env;
  for (auto& e : env_strings) env.push_back(e.data());
  env.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), env.data()) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

struct Result {
  int exit_code = -1;
  std::string out, err;
};

class CliE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string(TEMPER_COORDINATOR_BINARY).empty() || !fs::exists(TEMPER_COORDINATOR_BINARY))
      GTEST_SKIP() << "the coordinator binary was not built (" << TEMPER_COORDINATOR_BINARY
                   << "); build target temper-coordinator to run this test";
    char tmpl[] = "/tmp/temper-cli-e2e-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    chmod(dir_.c_str(), 0755);  // the embedded PostgreSQL runs as `postgres` when we are root
    StartCoordinator("127.0.0.1:0");
  }

  // Starts the coordinator on `listen` over the test's data directory and waits until it serves.
  void StartCoordinator(const std::string& listen) {
    fs::path addr_file = dir_ / "address";
    fs::remove(addr_file);
    coordinator_ = Spawn({TEMPER_COORDINATOR_BINARY, "--data-dir", (dir_ / "data").string(), "--listen", listen,
                          "--metrics-listen", "", "--address-file", addr_file.string()},
                         dir_ / "coordinator.out", dir_ / "coordinator.log");
    ASSERT_GT(coordinator_, 0);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(45);
    while (!fs::exists(addr_file)) {
      int status = 0;
      if (waitpid(coordinator_, &status, WNOHANG) == coordinator_) {
        coordinator_ = -1;
        FAIL() << "the coordinator exited early:\n" << ReadFile(dir_ / "coordinator.log");
      }
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << ReadFile(dir_ / "coordinator.log");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    address_ = std::string(absl::StripAsciiWhitespace(ReadFile(addr_file)));
  }

  void StopCoordinator() {
    if (coordinator_ <= 0) return;
    kill(coordinator_, SIGTERM);
    int status = 0;
    waitpid(coordinator_, &status, 0);
    coordinator_ = -1;
  }

  void TearDown() override {
    StopCoordinator();
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }

  // Starts `temper <args>` against the coordinator (through TEMPER_COORDINATOR), its output to
  // <dir>/<name>.out and .err.
  pid_t StartTemper(std::vector<std::string> args, const std::string& name) {
    args.insert(args.begin(), TEMPER_CLI_BINARY);
    return Spawn(args, dir_ / (name + ".out"), dir_ / (name + ".err"), {"TEMPER_COORDINATOR=" + address_});
  }

  Result WaitTemper(pid_t pid, const std::string& name) {
    Result r;
    if (pid <= 0) return r;
    int status = 0;
    waitpid(pid, &status, 0);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = ReadFile(dir_ / (name + ".out"));
    r.err = ReadFile(dir_ / (name + ".err"));
    return r;
  }

  // Runs `temper <args>` to its end.
  Result Temper(std::vector<std::string> args) { return WaitTemper(StartTemper(std::move(args), "temper"), "temper"); }

  std::string Example(const std::string& name) {
    const char* root = std::getenv("TEMPER_SOURCE_DIR");
    return (fs::path(root ? root : TEMPER_SOURCE_ROOT) / "examples" / name).string();
  }

  fs::path dir_;
  pid_t coordinator_ = -1;
  std::string address_;
};

TEST_F(CliE2eTest, SubmitListShowCancelWatch) {
  // Submit: one run, and the same file again returns the same run (the default key).
  Result r = Temper({"submit", Example("run.yaml")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_THAT(r.out, HasSubstr("submitted run "));
  std::string id(absl::StripPrefix(r.out, "submitted run "));
  id = id.substr(0, id.find(' '));
  Result again = Temper({"submit", Example("run.yaml")});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, r.out);

  // Invalid configs: clear errors with locations, exit 2, nothing queued.
  std::string good = ReadFile(Example("run.yaml"));
  struct Bad {
    std::string name, text, expect;
  };
  std::vector<Bad> bad = {
      {"malformed.yaml", "name: [unclosed\nmodel: {path: x\n", "malformed.yaml:"},
      {"unknown.yaml", absl::StrReplaceAll(good, {{"  r: 16", "  rank: 16"}}), "unknown.yaml:12:3: lora.rank:"},
      {"utf8.yaml", absl::StrReplaceAll(good, {{"for smoke tests", "for \xff\xfe smoke"}}), "utf8.yaml:"},
      {"sql.yaml", absl::StrReplaceAll(good, {{"name: tiny-llama-ei", "name: \"x'); DROP TABLE runs; --\""}}),
       "sql.yaml:4:7: name:"},
  };
  for (const auto& b : bad) {
    SCOPED_TRACE(b.name);
    WriteFile(dir_ / b.name, b.text);
    Result br = Temper({"submit", (dir_ / b.name).string()});
    EXPECT_EQ(br.exit_code, 2) << br.out << br.err;
    EXPECT_THAT(br.err, AllOf(HasSubstr(b.expect), HasSubstr("nothing was submitted")));
    EXPECT_EQ(br.out, "");
  }

  // List: only the valid run, as JSON and as a table; a SQL-ish prefix matches nothing.
  Result list = Temper({"runs", "list", "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto doc = nlohmann::json::parse(list.out);
  ASSERT_EQ(doc["runs"].size(), 1u) << list.out;
  EXPECT_EQ(doc["runs"][0]["id"], id);
  EXPECT_EQ(doc["runs"][0]["name"], "tiny-llama-ei");
  EXPECT_EQ(doc["runs"][0]["state"], "RUN_STATE_RUNNING");  // its first job is queued
  Result table = Temper({"runs", "list", "--state", "running", "--state", "pending", "--all", "--limit", "1"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, AllOf(HasSubstr("ID"), HasSubstr("tiny-llama-ei"), HasSubstr("running")));
  Result sql = Temper({"runs", "list", "--json", "--name-prefix", "%' OR '1'='1"});
  ASSERT_EQ(sql.exit_code, 0) << sql.err;
  EXPECT_EQ(nlohmann::json::parse(sql.out)["runs"].size(), 0u);

  // Show.
  Result show = Temper({"runs", "show", id});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_THAT(show.out, AllOf(HasSubstr("tiny-llama-ei"), HasSubstr("owner=ml-platform")));
  Result show_json = Temper({"--json", "runs", "show", id});
  ASSERT_EQ(show_json.exit_code, 0) << show_json.err;
  EXPECT_EQ(nlohmann::json::parse(show_json.out)["config"]["lora"]["r"], 16);

  // Jobs and workers.
  Result jobs = Temper({"jobs", "--run", id, "--json"});
  ASSERT_EQ(jobs.exit_code, 0) << jobs.err;
  EXPECT_GE(nlohmann::json::parse(jobs.out)["jobs"].size(), 1u) << jobs.out;
  Result jobs_table = Temper({"jobs", "--state", "pending"});
  ASSERT_EQ(jobs_table.exit_code, 0) << jobs_table.err;
  EXPECT_THAT(jobs_table.out, HasSubstr("pending"));
  Result workers = Temper({"workers", "--json"});
  ASSERT_EQ(workers.exit_code, 0) << workers.err;
  EXPECT_EQ(nlohmann::json::parse(workers.out)["workers"].size(), 0u);
  Result ckpts = Temper({"checkpoints", "list", id, "--json"});
  ASSERT_EQ(ckpts.exit_code, 0) << ckpts.err;
  EXPECT_EQ(nlohmann::json::parse(ckpts.out)["checkpoints"].size(), 0u);

  // Cancel, then watch to the end: cancelled exits 1.
  Result cancel = Temper({"runs", "cancel", id, "--reason", "e2e test"});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  Result watch = Temper({"watch", id});
  EXPECT_EQ(watch.exit_code, 1) << watch.out << watch.err;
  EXPECT_THAT(watch.out, AllOf(HasSubstr(" submitted run tiny-llama-ei submitted"), HasSubstr(" run_cancelled ")));
  EXPECT_THAT(watch.err, HasSubstr("cancelled"));
  Result cancelled = Temper({"runs", "list", "--json", "--state", "cancelled"});
  ASSERT_EQ(cancelled.exit_code, 0) << cancelled.err;
  EXPECT_EQ(nlohmann::json::parse(cancelled.out)["runs"].size(), 1u);

  // Failures: unknown run (server error, 1), bad arguments (2), unreachable coordinator (1).
  Result missing = Temper({"runs", "show", "999999"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("999999"));
  EXPECT_EQ(Temper({"runs", "show", "abc"}).exit_code, 2);
  EXPECT_EQ(Temper({"runs", "list", "--state", "bogus"}).exit_code, 2);
  EXPECT_EQ(Temper({"frobnicate"}).exit_code, 2);
  Result unreachable = Temper({"--coordinator", "127.0.0.1:1", "runs", "list"});
  EXPECT_EQ(unreachable.exit_code, 1);
  EXPECT_THAT(unreachable.err, HasSubstr("cannot reach the coordinator at 127.0.0.1:1"));

  // Still only the one valid run.
  Result final_list = Temper({"runs", "list", "--json", "--all"});
  ASSERT_EQ(final_list.exit_code, 0) << final_list.err;
  EXPECT_EQ(nlohmann::json::parse(final_list.out)["runs"].size(), 1u);
}

// The coordinator stops and comes back while `temper watch` follows a run: the watch reconnects,
// resumes after the last event it printed (no event twice), and ends when the run does.
TEST_F(CliE2eTest, WatchSurvivesACoordinatorRestart) {
  Result r = Temper({"submit", Example("run.yaml")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string id(absl::StripPrefix(r.out, "submitted run "));
  id = id.substr(0, id.find(' '));
  pid_t watch = StartTemper({"watch", id}, "watch");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (ReadFile(dir_ / "watch.out").find("stage_queued") == std::string::npos) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << ReadFile(dir_ / "watch.err");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::string address = address_;
  StopCoordinator();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the watch notices and retries
  StartCoordinator(address);
  ASSERT_EQ(address_, address);
  Result cancel = Temper({"runs", "cancel", id});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  Result w = WaitTemper(watch, "watch");
  EXPECT_EQ(w.exit_code, 1) << w.out << w.err;
  EXPECT_THAT(w.err, AllOf(HasSubstr("reconnecting"), HasSubstr("cancelled")));
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t at = w.out.find(needle); at != std::string::npos; at = w.out.find(needle, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count(" submitted "), 1u) << w.out;
  EXPECT_EQ(count(" stage_queued "), 1u) << w.out;
  EXPECT_EQ(count(" run_cancelled "), 1u) << w.out;
}

}  // namespace
