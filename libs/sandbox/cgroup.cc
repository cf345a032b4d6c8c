#include "libs/sandbox/cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace temper::sandbox {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// Cgroup control files want the whole value in one write().
absl::Status WriteFile(const std::string& path, const std::string& value) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::PermissionDeniedError(absl::StrCat("open ", path, ": ", strerror(errno)));
  ssize_t n = write(fd, value.data(), value.size());
  int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    return absl::InternalError(absl::StrCat("write '", value, "' to ", path, ": ", strerror(err)));
  }
  return absl::OkStatus();
}

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<int64_t> ReadInt(const std::string& path) {
  auto text = ReadFile(path);
  int64_t v;
  if (!text || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &v)) return std::nullopt;
  return v;
}

// The value of `key` in a flat-keyed file ("key value" per line), e.g. memory.events.
std::optional<int64_t> ReadKeyed(const std::string& path, absl::string_view key) {
  auto text = ReadFile(path);
  if (!text) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    int64_t v;
    if (parts.size() == 2 && parts[0] == key && absl::SimpleAtoi(parts[1], &v)) return v;
  }
  return std::nullopt;
}

absl::Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::PermissionDeniedError(absl::StrCat("mkdir ", path, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

constexpr int64_t kCpuPeriodUs = 100'000;

}  // namespace

CgroupVersion DetectCgroupVersion(const std::string& root) {
  if (Exists(root + "/cgroup.controllers")) return CgroupVersion::kV2;
  if (Exists(root + "/memory/memory.limit_in_bytes") && Exists(root + "/pids")) {
    return CgroupVersion::kV1;
  }
  return CgroupVersion::kNone;
}

absl::StatusOr<std::unique_ptr<Cgroup>> Cgroup::Create(const std::string& root,
                                                       const std::string& name,
                                                       const Limits& limits) {
  const CgroupVersion version = DetectCgroupVersion(root);
  const int64_t quota = std::max<int64_t>(1000, static_cast<int64_t>(limits.cpus * kCpuPeriodUs));
  std::vector<std::string> dirs;
  std::unique_ptr<Cgroup> group;
  switch (version) {
    case CgroupVersion::kNone:
      return absl::FailedPreconditionError(absl::StrCat("no cgroup v1 or v2 hierarchy at ", root));
    case CgroupVersion::kV1: {
      for (const char* controller : {"memory", "pids", "cpu"}) {
        std::string parent = absl::StrCat(root, "/", controller, "/temper");
        RETURN_IF_ERROR(MakeDir(parent));
        dirs.push_back(absl::StrCat(parent, "/", name));
      }
      for (const std::string& dir : dirs) RETURN_IF_ERROR(MakeDir(dir));
      group.reset(new Cgroup(version, dirs));
      const std::string mem = absl::StrCat(limits.memory_bytes);
      RETURN_IF_ERROR(WriteFile(dirs[0] + "/memory.limit_in_bytes", mem));
      // memsw exists only with swap accounting; where it does, memory+swap gets the same cap.
      if (Exists(dirs[0] + "/memory.memsw.limit_in_bytes")) {
        RETURN_IF_ERROR(WriteFile(dirs[0] + "/memory.memsw.limit_in_bytes", mem));
      }
      if (Exists(dirs[0] + "/memory.swappiness")) {
        (void)WriteFile(dirs[0] + "/memory.swappiness", "0");
      }
      RETURN_IF_ERROR(WriteFile(dirs[1] + "/pids.max", absl::StrCat(limits.pids)));
      RETURN_IF_ERROR(WriteFile(dirs[2] + "/cpu.cfs_period_us", absl::StrCat(kCpuPeriodUs)));
      RETURN_IF_ERROR(WriteFile(dirs[2] + "/cpu.cfs_quota_us", absl::StrCat(quota)));
      break;
    }
    case CgroupVersion::kV2: {
      // Controllers must be enabled on every level above the leaf that holds the processes.
      std::string parent = root + "/temper";
      RETURN_IF_ERROR(MakeDir(parent));
      (void)WriteFile(root + "/cgroup.subtree_control", "+memory +pids +cpu");
      (void)WriteFile(parent + "/cgroup.subtree_control", "+memory +pids +cpu");
      dirs.push_back(absl::StrCat(parent, "/", name));
      RETURN_IF_ERROR(MakeDir(dirs[0]));
      group.reset(new Cgroup(version, dirs));
      RETURN_IF_ERROR(WriteFile(dirs[0] + "/memory.max", absl::StrCat(limits.memory_bytes)));
      RETURN_IF_ERROR(WriteFile(dirs[0] + "/memory.swap.max", "0"));
      RETURN_IF_ERROR(WriteFile(dirs[0] + "/pids.max", absl::StrCat(limits.pids)));
      RETURN_IF_ERROR(WriteFile(dirs[0] + "/cpu.max", absl::StrCat(quota, " ", kCpuPeriodUs)));
      break;
    }
  }
  return group;
}

Cgroup::~Cgroup() {
  KillAll();
  for (const std::string& dir : dirs_) rmdir(dir.c_str());
}

absl::Status Cgroup::AddProcess(pid_t pid) {
  for (const std::string& dir : dirs_) {
    RETURN_IF_ERROR(WriteFile(dir + "/cgroup.procs", absl::StrCat(pid)));
  }
  return absl::OkStatus();
}

std::vector<pid_t> Cgroup::Members() const {
  std::vector<pid_t> pids;
  for (const std::string& dir : dirs_) {
    auto text = ReadFile(dir + "/cgroup.procs");
    if (!text) continue;
    for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
      int pid;
      if (absl::SimpleAtoi(line, &pid) && pid > 0) pids.push_back(pid);
    }
  }
  return pids;
}

void Cgroup::KillAll() {
  if (version_ == CgroupVersion::kV2 && Exists(dirs_[0] + "/cgroup.kill")) {
    (void)WriteFile(dirs_[0] + "/cgroup.kill", "1");
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (std::chrono::steady_clock::now() < deadline) {
    std::vector<pid_t> pids = Members();
    if (pids.empty()) return;
    for (pid_t pid : pids) kill(pid, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

CgroupUsage Cgroup::ReadUsage() const {
  CgroupUsage usage;
  if (version_ == CgroupVersion::kV1) {
    usage.peak_memory_bytes = ReadInt(dirs_[0] + "/memory.max_usage_in_bytes");
    usage.oom_killed = ReadKeyed(dirs_[0] + "/memory.oom_control", "oom_kill").value_or(0) > 0;
    usage.pids_exhausted = ReadKeyed(dirs_[1] + "/pids.events", "max").value_or(0) > 0;
  } else if (version_ == CgroupVersion::kV2) {
    usage.peak_memory_bytes = ReadInt(dirs_[0] + "/memory.peak");
    usage.oom_killed = ReadKeyed(dirs_[0] + "/memory.events", "oom_kill").value_or(0) > 0;
    usage.pids_exhausted = ReadKeyed(dirs_[0] + "/pids.events", "max").value_or(0) > 0;
  }
  return usage;
}

}  // namespace temper::sandbox
