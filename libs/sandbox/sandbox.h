// Sandbox: runs one untrusted command in a fresh, throw-away confinement and reports how it ended.
//
// The interface is deliberately small: a Request names the command, the files it starts with, the
// files to bring back out, and the limits; a Result says how it ended and which limit, if any,
// ended it. BwrapSandbox (bwrap_sandbox.h) is the real implementation; FakeSandbox
// (fake_sandbox.h) scripts results for unit tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "libs/common/status.h"

namespace temper::sandbox {

// The only writable place inside a sandbox: a size-capped tmpfs, also the working directory.
inline constexpr std::string_view kWorkDir = "/work";

// The limit that ended a program. kNone means it ended on its own (whatever its exit status).
enum class Limit {
  kNone,
  kWallTime,  // wall-clock timeout; the whole process tree was killed
  kMemory,    // cgroup memory limit (no swap): the OOM killer fired
  kPids,      // cgroup process-count limit: fork/clone failed and the program did not succeed
  kCpuTime,   // RLIMIT_CPU (SIGXCPU / SIGKILL)
  kFileSize,  // RLIMIT_FSIZE (SIGXFSZ)
  kOutput,    // stdout/stderr or a collected file grew past its cap; the tree was killed
};
std::string_view LimitName(Limit limit);
// Inverse of LimitName; nullopt for unknown names.
std::optional<Limit> LimitFromName(std::string_view name);

// Resource limits of one run. Defaults suit running a small test binary.
struct Limits {
  std::chrono::milliseconds wall_time{10'000};
  std::chrono::seconds cpu_time{10};        // per process (RLIMIT_CPU)
  int64_t memory_bytes = 512LL << 20;       // cgroup, swap included (so no swap)
  int64_t pids = 64;                        // cgroup: processes + threads
  double cpus = 1.0;                        // cgroup CPU bandwidth, in cores
  int64_t file_size_bytes = 16LL << 20;     // RLIMIT_FSIZE
  int64_t open_files = 256;                 // RLIMIT_NOFILE
  int64_t tmpfs_bytes = 64LL << 20;         // size of the writable /work
  int64_t output_bytes = 1LL << 20;         // cap on each of stdout and stderr
  int64_t collected_file_bytes = 64LL << 20;  // cap on each file brought back out
};

// A file placed under /work before the command starts. `path` is relative to /work.
struct InputFile {
  std::string path;
  std::string contents;
  bool executable = false;
};

struct Request {
  std::vector<std::string> argv;                            // argv[0] is a path inside the sandbox
  std::vector<std::pair<std::string, std::string>> env;     // the whole environment, nothing inherited
  std::vector<InputFile> inputs;
  // Files under /work (relative paths) copied back out after the command ends, whatever its status.
  // They are how one stage hands an artifact to the next, since each run's tmpfs dies with it.
  std::vector<std::string> collect;
  std::string stdin_data;
  Limits limits;
};

struct Result {
  Limit limit = Limit::kNone;       // the limit that ended the program, if any
  std::vector<Limit> limits_reached;  // every limit observed to be reached (superset of `limit`)
  int exit_code = -1;               // valid when signal == 0
  int signal = 0;                   // the signal that ended the command, 0 if it exited
  std::string stdout_data;
  std::string stderr_data;
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  std::chrono::milliseconds wall_time{0};
  std::chrono::milliseconds cpu_time{0};     // user + system of the whole tree, when known
  std::optional<int64_t> peak_memory_bytes;  // cgroup peak when known, else max RSS
  std::map<std::string, std::string> collected;  // path → contents, for each `collect` file present

  // True when the command exited 0 and no limit ended it.
  bool Succeeded() const { return limit == Limit::kNone && signal == 0 && exit_code == 0; }
};

// A place to run untrusted commands. Implementations are thread-safe: Run may be called from many
// threads at once, each call getting its own confinement.
class Sandbox {
 public:
  virtual ~Sandbox() = default;
  // Runs `request` to completion. An OK result whatever the program did (crash, limit, non-zero
  // exit); an error status only when the sandbox itself could not be set up.
  virtual absl::StatusOr<Result> Run(const Request& request) = 0;
};

}  // namespace temper::sandbox
