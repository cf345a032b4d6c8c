// Cgroup: one freshly made control group per sandbox run, holding its memory (no swap), process
// count and CPU bandwidth limits, on cgroup v1 or v2 (detected). Not thread-safe; one per run.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "libs/common/status.h"
#include "libs/sandbox/sandbox.h"

namespace temper::sandbox {

enum class CgroupVersion { kNone, kV1, kV2 };

// Which cgroup layout is mounted at `root` ("/sys/fs/cgroup" on a real host; a temporary directory
// laid out the same way in tests).
CgroupVersion DetectCgroupVersion(const std::string& root);

// What a run's cgroup observed, read after the run.
struct CgroupUsage {
  std::optional<int64_t> peak_memory_bytes;
  bool oom_killed = false;      // the OOM killer fired inside the group
  bool pids_exhausted = false;  // a fork/clone was refused by pids.max
};

class Cgroup {
 public:
  // Creates `<root>/.../temper/<name>` (one per v1 controller: memory, pids, cpu; one in v2) with
  // `limits` applied. Fails when the layout is unknown or the files cannot be written (no
  // permission, controller missing).
  static absl::StatusOr<std::unique_ptr<Cgroup>> Create(const std::string& root,
                                                        const std::string& name,
                                                        const Limits& limits);
  // Kills whatever is still inside and removes the directories (best effort).
  ~Cgroup();
  Cgroup(const Cgroup&) = delete;
  Cgroup& operator=(const Cgroup&) = delete;

  // Moves process `pid` (and its future children) into the group.
  absl::Status AddProcess(pid_t pid);
  // SIGKILLs every process in the group, repeating until it is empty or ~1 s has passed.
  void KillAll();
  CgroupUsage ReadUsage() const;
  CgroupVersion version() const { return version_; }
  // The directories made, one per v1 controller or a single v2 one.
  const std::vector<std::string>& dirs() const { return dirs_; }

 private:
  Cgroup(CgroupVersion version, std::vector<std::string> dirs)
      : version_(version), dirs_(std::move(dirs)) {}
  std::vector<pid_t> Members() const;

  CgroupVersion version_;
  std::vector<std::string> dirs_;  // v1: memory, pids, cpu in that order; v2: one
};

}  // namespace temper::sandbox
