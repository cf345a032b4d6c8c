// The `temper` CLI's commands, apart from argument parsing and the process: each takes the
// coordinator client, its options and where to write, and returns the process exit code.
// main.cc only parses flags and wires these to a gRPC client and the real terminal.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "cli/client.h"
#include "cli/format.h"

namespace temper::cli {

// Exit codes: every failure is non-zero.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the server refused or failed, or a watched run did not succeed
inline constexpr int kExitUsage = 2;    // bad arguments or an invalid config: nothing was sent

// Where a command writes and what it needs of the process around it.
struct Io {
  Io(std::ostream& o, std::ostream& e) : out(o), err(e) {}
  std::ostream& out;
  std::ostream& err;
  bool tty = false;    // `out` is a terminal: watch redraws one progress line in place
  size_t width = 100;  // the terminal's width in columns
  HumanFormat fmt;
  // Waits between watch reconnects; tests replace it to not sleep.
  std::function<void(absl::Duration)> sleep = [](absl::Duration d) { absl::SleepFor(d); };
};

// The idempotency key `temper submit` sends when none is given: "sha256:" and the hex SHA-256
// of the file's bytes, so resubmitting the same file (a retry after a timeout, say) returns the
// runs it already created instead of queueing them again. Point i of a sweep gets "<key>/<i>".
std::string DefaultIdempotencyKey(std::string_view file_bytes);

struct SubmitOptions {
  std::string idempotency_key;  // empty: DefaultIdempotencyKey
  bool watch = false;           // then follow each run to its end; exit 1 unless all succeeded
  bool json = false;
};
// Validates `yaml` (read from `file_name`) strictly and, only when it is valid, submits it: one
// run, or one per point of its sweep. Invalid: every error on io.err as
// "file:line:col: path: message", exit 2, and `client` is never called.
int SubmitYaml(CoordinatorClient& client, std::string_view yaml, const std::string& file_name,
               const SubmitOptions& options, Io& io);
// SubmitYaml on the file's contents; an unreadable file is a usage error (exit 2).
int SubmitFile(CoordinatorClient& client, const std::string& path, const SubmitOptions& options, Io& io);

struct ListRunsOptions {
  std::vector<std::string> states;  // names: pending, running, ... (any of them)
  std::string name_prefix;
  int32_t limit = 0;                // page size, 1..1000; 0: the server's default (50)
  std::string page_token;
  bool all = false;                 // follow next_page_token to the end
  bool json = false;
};
int ListRuns(CoordinatorClient& client, const ListRunsOptions& options, Io& io);
int ShowRun(CoordinatorClient& client, int64_t id, bool json, Io& io);
int CancelRun(CoordinatorClient& client, int64_t id, const std::string& reason, bool json, Io& io);

struct WatchOptions {
  bool json = false;                             // one JSON object per event per line
  absl::Duration give_up_after = absl::Minutes(5);  // of reconnecting without receiving anything
};
// Follows the run's events to its end, reconnecting (from the last event seen) when the stream
// breaks. Exit 0 when the run succeeded, 1 when it failed or was cancelled or cannot be followed.
int WatchRun(CoordinatorClient& client, int64_t id, const WatchOptions& options, Io& io);

struct ListJobsOptions {
  int64_t run_id = 0;  // 0: all runs
  std::vector<std::string> states;
  int32_t limit = 0;   // 1..10000; 0: the server's default (100)
  bool json = false;
};
int ListJobs(CoordinatorClient& client, const ListJobsOptions& options, Io& io);
int ListWorkers(CoordinatorClient& client, bool json, Io& io);
int ListCheckpoints(CoordinatorClient& client, int64_t run_id, bool json, Io& io);
int CheckpointLineage(CoordinatorClient& client, int64_t checkpoint_id, bool json, Io& io);

}  // namespace temper::cli
