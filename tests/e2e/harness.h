// End-to-end harness: real processes (coordinator, simulated workers) against a real PostgreSQL.
// Not thread-safe; one test drives it.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "temper/v1/run.grpc.pb.h"

namespace temper::e2e {

// A child process; killed with SIGKILL on destruction if still running.
class Process {
 public:
  Process(std::vector<std::string> argv, const std::string& log_path);
  ~Process();
  pid_t pid() const { return pid_; }
  void Signal(int sig);
  // Waits for exit; returns the exit status (as from waitpid) or -1 on timeout.
  int Wait(std::chrono::milliseconds timeout);
  bool Running();

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// A free TCP port on 127.0.0.1 (bound, then released).
int FreePort();

// Path of a built binary, from the TEMPER_BINARY_DIR environment variable.
std::string Binary(const std::string& relative);

struct CoordinatorFlags {
  std::string database_url;
  int port = 0;
  double lease_seconds = 2;
  double backoff_base_seconds = 0.2;
};

std::unique_ptr<Process> StartCoordinator(const CoordinatorFlags& flags, const std::string& log);
// Blocks until the coordinator answers GetRun/ListRuns, up to `timeout`.
bool WaitForCoordinator(const std::string& address, std::chrono::milliseconds timeout);

std::unique_ptr<Process> StartSimWorkers(const std::string& address, int workers, const std::string& kinds,
                                         int job_ms, const std::string& log, const std::string& name);

// A minimal valid run config: `rounds` expert-iteration rounds with `gpus` ranks per train job.
v1::RunConfig TestRunConfig(const std::string& name, int rounds, int gpus);

// Submits through RunService; returns the run ids.
std::vector<int64_t> SubmitRuns(v1::RunService::Stub& stub, const std::vector<v1::RunConfig>& configs);
// Waits until every run is terminal; returns their final states by id (missing ids on timeout).
std::map<int64_t, v1::RunState> WaitTerminal(v1::RunService::Stub& stub, const std::vector<int64_t>& ids,
                                             std::chrono::milliseconds timeout);

// Parses the JSON lines simulated workers wrote.
std::vector<std::map<std::string, std::string>> ReadJsonLines(const std::string& path);

// Asserts (gtest) the database's jobs each ended once: for every job in the given runs, state
// succeeded and exactly one accepted completion across all worker logs, from its final epoch.
void ExpectEachJobEndedExactlyOnce(const std::string& conninfo, const std::vector<int64_t>& runs,
                                   const std::vector<std::string>& worker_logs);

}  // namespace temper::e2e
