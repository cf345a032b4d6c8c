#include "libs/sandbox/bwrap_sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/sandbox/cgroup.h"
#include "libs/sandbox/seccomp_policy.h"

namespace temper::sandbox {
namespace {

using Clock = std::chrono::steady_clock;

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", strerror(errno)));
}

absl::StatusOr<std::pair<Fd, Fd>> MakePipe() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return Errno("pipe2");
  return std::make_pair(Fd(p[0]), Fd(p[1]));
}

absl::StatusOr<Fd> MemFdWith(std::string_view name, std::string_view contents) {
  Fd fd(memfd_create(std::string(name).c_str(), MFD_CLOEXEC));
  if (!fd.valid()) return Errno("memfd_create");
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = write(fd.get(), contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Errno("write memfd");
    done += static_cast<size_t>(n);
  }
  if (lseek(fd.get(), 0, SEEK_SET) != 0) return Errno("lseek memfd");
  return fd;
}

// Quotes `s` for /bin/sh single-quoted context.
std::string ShellQuote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// A captured stream with a byte cap.
struct Capture {
  Fd fd;
  std::string* data = nullptr;
  int64_t cap = 0;
  bool truncated = false;
};

}  // namespace

SystemLayout DetectSystemLayout() {
  SystemLayout layout;
  layout.ro_binds.push_back("/usr");
  for (const char* path : {"/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"}) {
    std::error_code ec;
    auto status = std::filesystem::symlink_status(path, ec);
    if (ec || !std::filesystem::exists(status)) continue;
    if (std::filesystem::is_symlink(status)) {
      layout.symlinks.emplace_back(std::filesystem::read_symlink(path, ec).string(), path);
    } else if (std::filesystem::is_directory(status)) {
      layout.ro_binds.push_back(path);
    }
  }
  return layout;
}

std::vector<std::string> BuildBwrapArgv(const BwrapConfig& config, const SystemLayout& layout,
                                        const Request& request, const BwrapFds& fds) {
  const std::string work(kWorkDir);
  std::vector<std::string> a = {config.bwrap_path,
                                "--unshare-user",
                                "--unshare-pid",
                                "--unshare-ipc",
                                "--unshare-uts",
                                "--unshare-net",
                                "--unshare-cgroup-try",
                                "--uid",
                                absl::StrCat(config.sandbox_uid),
                                "--gid",
                                absl::StrCat(config.sandbox_uid),
                                "--hostname",
                                "sandbox",
                                "--cap-drop",
                                "ALL",
                                "--new-session",
                                "--die-with-parent",
                                "--clearenv"};
  for (const std::string& path : layout.ro_binds) {
    a.insert(a.end(), {"--ro-bind", path, path});
  }
  for (const auto& [target, link] : layout.symlinks) {
    a.insert(a.end(), {"--symlink", target, link});
  }
  for (size_t i = 0; i < config.mounts.size(); ++i) {
    a.insert(a.end(), {"--ro-bind-fd", absl::StrCat(fds.mounts[i]), config.mounts[i].sandbox_path});
  }
  a.insert(a.end(), {"--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"});
  a.insert(a.end(), {"--size", absl::StrCat(request.limits.tmpfs_bytes), "--tmpfs", work});
  a.insert(a.end(), {"--dir", work + "/.tmp"});
  // Parent directories of inputs, shallowest first.
  std::vector<std::string> dirs;
  for (const InputFile& input : request.inputs) {
    std::filesystem::path parent = std::filesystem::path(input.path).parent_path();
    for (std::filesystem::path p = parent; !p.empty() && p != p.root_path(); p = p.parent_path()) {
      dirs.push_back(p.string());
    }
  }
  std::sort(dirs.begin(), dirs.end());
  dirs.erase(std::unique(dirs.begin(), dirs.end()), dirs.end());
  for (const std::string& dir : dirs) a.insert(a.end(), {"--dir", work + "/" + dir});
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    a.insert(a.end(), {"--perms", request.inputs[i].executable ? "0755" : "0644", "--file",
                       absl::StrCat(fds.inputs[i]), work + "/" + request.inputs[i].path});
  }
  // bwrap builds the tree on a tmpfs root: freeze it, leaving /work the only writable place.
  a.insert(a.end(), {"--remount-ro", "/"});
  // The tmpfs is also where temporary files go (rustc, cc, the test harness).
  a.insert(a.end(), {"--setenv", "TMPDIR", work + "/.tmp", "--chdir", work});
  for (const auto& [key, value] : request.env) a.insert(a.end(), {"--setenv", key, value});
  a.insert(a.end(), {"--seccomp", absl::StrCat(fds.seccomp)});
  a.insert(a.end(), {"--json-status-fd", absl::StrCat(fds.json_status)});
  a.push_back("--");
  if (request.collect.empty()) {
    a.insert(a.end(), request.argv.begin(), request.argv.end());
    return a;
  }
  // Collection: once the command ends, a shell copies each file down its own pipe and exits with
  // the command's status (128+N when a signal N ended it, as bwrap itself reports).
  std::string script = "\"$@\"; rc=$?";
  for (size_t i = 0; i < request.collect.size(); ++i) {
    absl::StrAppend(&script, "; cat -- ", ShellQuote(work + "/" + request.collect[i]), " >&",
                    fds.collect[i], " 2>/dev/null; exec ", fds.collect[i], ">&-");
  }
  absl::StrAppend(&script, "; exit $rc");
  a.insert(a.end(), {"/bin/sh", "-c", script, "sh"});
  a.insert(a.end(), request.argv.begin(), request.argv.end());
  return a;
}

absl::Status CheckBwrapUsable(const BwrapConfig& config) {
  if (access(config.bwrap_path.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(config.bwrap_path, " not found"));
  }
  BwrapConfig probe_config = config;
  probe_config.require_cgroups = false;
  auto sandbox = BwrapSandbox::Create(probe_config);
  if (!sandbox.ok()) return sandbox.status();
  Request probe;
  probe.argv = {"/bin/true"};
  auto result = (*sandbox)->Run(probe);
  if (!result.ok()) return result.status();
  if (!result->Succeeded()) {
    return absl::FailedPreconditionError(absl::StrCat("bwrap probe failed: ", result->stderr_data));
  }
  return absl::OkStatus();
}

bool ReachableByOthers(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::canonical(path, ec);
  if (ec) return false;
  for (; !p.empty(); p = p.parent_path()) {
    struct stat st;
    if (stat(p.c_str(), &st) != 0 || (st.st_mode & S_IROTH) == 0 || (st.st_mode & S_IXOTH) == 0) {
      return false;
    }
    if (p == p.root_path()) break;
  }
  return true;
}

absl::StatusOr<std::unique_ptr<BwrapSandbox>> BwrapSandbox::Create(BwrapConfig config) {
  ASSIGN_OR_RETURN(std::string bpf, BuildSeccompBpf());
  bool reachable = true;
  for (const ReadOnlyMount& m : config.mounts) reachable = reachable && ReachableByOthers(m.host_path);
  auto sandbox = std::unique_ptr<BwrapSandbox>(
      new BwrapSandbox(std::move(config), DetectSystemLayout(), std::move(bpf)));
  sandbox->mounts_reachable_by_others_ = reachable;
  return sandbox;
}

absl::StatusOr<Result> BwrapSandbox::Run(const Request& request) {
  if (request.argv.empty()) return absl::InvalidArgumentError("sandbox: empty argv");
  if (request.collect.size() > 7) return absl::InvalidArgumentError("sandbox: at most 7 collected files");
  const Limits& limits = request.limits;

  // The cgroup first: without it there are no memory/process limits.
  std::unique_ptr<Cgroup> cgroup;
  {
    auto made = Cgroup::Create(config_.cgroup_root,
                               absl::StrCat("run-", getpid(), "-", next_run_.fetch_add(1)), limits);
    if (made.ok()) {
      cgroup = std::move(*made);
    } else if (config_.require_cgroups) {
      return absl::FailedPreconditionError(
          absl::StrCat("sandbox: cgroup limits unavailable: ", made.status().message()));
    }
  }

  // Every fd the child needs, created close-on-exec; the child moves each to its planned number.
  ASSIGN_OR_RETURN(auto out_pipe, MakePipe());
  ASSIGN_OR_RETURN(auto err_pipe, MakePipe());
  ASSIGN_OR_RETURN(auto status_pipe, MakePipe());
  // A socketpair rather than a pipe: if the child dies early, send() fails instead of raising SIGPIPE.
  int go_sockets[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, go_sockets) != 0) return Errno("socketpair");
  std::pair<Fd, Fd> go_pipe{Fd(go_sockets[0]), Fd(go_sockets[1])};
  ASSIGN_OR_RETURN(Fd stdin_fd, MemFdWith("stdin", request.stdin_data));
  ASSIGN_OR_RETURN(Fd seccomp_fd, MemFdWith("seccomp", seccomp_bpf_));
  std::vector<std::pair<Fd, Fd>> collect_pipes;
  for (size_t i = 0; i < request.collect.size(); ++i) {
    ASSIGN_OR_RETURN(auto p, MakePipe());
    collect_pipes.push_back(std::move(p));
  }
  std::vector<Fd> mount_fds;
  for (const ReadOnlyMount& mount : config_.mounts) {
    Fd fd(open(mount.host_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return Errno(absl::StrCat("sandbox: open mount ", mount.host_path));
    mount_fds.push_back(std::move(fd));
  }
  std::vector<Fd> input_fds;
  for (const InputFile& input : request.inputs) {
    if (input.path.empty() || input.path[0] == '/' || input.path.find("..") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("sandbox: bad input path ", input.path));
    }
    ASSIGN_OR_RETURN(Fd fd, MemFdWith("input", input.contents));
    input_fds.push_back(std::move(fd));
  }

  // Plan: 0,1,2 stdio; 3.. collect pipes (a shell refers to them, so single digits); then the rest.
  std::vector<int> sources = {stdin_fd.get(), out_pipe.second.get(), err_pipe.second.get()};
  BwrapFds planned;
  for (auto& p : collect_pipes) {
    planned.collect.push_back(static_cast<int>(sources.size()));
    sources.push_back(p.second.get());
  }
  planned.json_status = static_cast<int>(sources.size());
  sources.push_back(status_pipe.second.get());
  planned.seccomp = static_cast<int>(sources.size());
  sources.push_back(seccomp_fd.get());
  for (Fd& fd : mount_fds) {
    planned.mounts.push_back(static_cast<int>(sources.size()));
    sources.push_back(fd.get());
  }
  for (Fd& fd : input_fds) {
    planned.inputs.push_back(static_cast<int>(sources.size()));
    sources.push_back(fd.get());
  }
  const int high_base =
      std::max(*std::max_element(sources.begin(), sources.end()), static_cast<int>(sources.size())) + 1;
  std::vector<int> scratch(sources.size(), -1);

  const std::vector<std::string> args = BuildBwrapArgv(config_, layout_, request, planned);
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  const bool drop_privileges = geteuid() == 0 && mounts_reachable_by_others_;
  const uid_t sandbox_id = static_cast<uid_t>(config_.sandbox_uid);
  const pid_t parent_pid = getpid();
  const rlimit cpu_limit = {static_cast<rlim_t>(limits.cpu_time.count()),
                            static_cast<rlim_t>(limits.cpu_time.count() + 1)};
  const rlimit fsize_limit = {static_cast<rlim_t>(limits.file_size_bytes),
                              static_cast<rlim_t>(limits.file_size_bytes)};
  const rlimit nofile_limit = {static_cast<rlim_t>(limits.open_files),
                               static_cast<rlim_t>(limits.open_files)};
  const rlimit core_limit = {0, 0};
  const int go_read = go_pipe.first.get();

  const Clock::time_point start = Clock::now();
  pid_t pid = fork();
  if (pid < 0) return Errno("fork");
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    setpgid(0, 0);
    // Park the go pipe above the planned range too: the dup2s below may land on its number.
    const int go = fcntl(go_read, F_DUPFD_CLOEXEC, high_base);
    if (go < 0) _exit(126);
    for (size_t i = 0; i < sources.size(); ++i) {
      scratch[i] = fcntl(sources[i], F_DUPFD_CLOEXEC, high_base);
      if (scratch[i] < 0) _exit(126);
    }
    for (size_t i = 0; i < sources.size(); ++i) {
      if (dup2(scratch[i], static_cast<int>(i)) < 0) _exit(126);
    }
    char go_byte;
    if (read(go, &go_byte, 1) != 1) _exit(126);
    if (setrlimit(RLIMIT_CPU, &cpu_limit) != 0 || setrlimit(RLIMIT_FSIZE, &fsize_limit) != 0 ||
        setrlimit(RLIMIT_NOFILE, &nofile_limit) != 0 || setrlimit(RLIMIT_CORE, &core_limit) != 0) {
      _exit(126);
    }
    if (drop_privileges) {
      if (setgroups(0, nullptr) != 0 || setresgid(sandbox_id, sandbox_id, sandbox_id) != 0 ||
          setresuid(sandbox_id, sandbox_id, sandbox_id) != 0) {
        _exit(126);
      }
    }
    // After the uid change, which clears it.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent_pid) _exit(126);
    execve(argv[0], argv.data(), envp);
    _exit(127);
  }

  // Parent.
  out_pipe.second.Reset();
  err_pipe.second.Reset();
  status_pipe.second.Reset();
  for (auto& p : collect_pipes) p.second.Reset();
  go_pipe.first.Reset();
  Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  bool killed_for_wall = false;
  bool killed_for_output = false;
  auto kill_tree = [&] {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    if (cgroup) cgroup->KillAll();
  };
  if (cgroup) {
    absl::Status added = cgroup->AddProcess(pid);
    if (!added.ok()) {
      kill_tree();
      waitpid(pid, nullptr, 0);
      return added;
    }
  }
  if (send(go_pipe.second.get(), "g", 1, MSG_NOSIGNAL) != 1) {
    kill_tree();
    waitpid(pid, nullptr, 0);
    return Errno("sandbox: release child");
  }
  go_pipe.second.Reset();

  Result result;
  std::string status_json;
  std::vector<Capture> captures;
  captures.push_back({std::move(out_pipe.first), &result.stdout_data, limits.output_bytes});
  captures.push_back({std::move(err_pipe.first), &result.stderr_data, limits.output_bytes});
  captures.push_back({std::move(status_pipe.first), &status_json, 1 << 16});
  std::vector<std::string> collected(request.collect.size());
  for (size_t i = 0; i < collect_pipes.size(); ++i) {
    captures.push_back({std::move(collect_pipes[i].first), &collected[i], limits.collected_file_bytes});
  }

  const Clock::time_point deadline = start + limits.wall_time;
  std::optional<Clock::time_point> grace_deadline;
  bool exited = false;
  std::vector<char> buf(1 << 16);
  while (true) {
    bool any_open = false;
    std::vector<pollfd> pfds;
    std::vector<size_t> which;
    for (size_t i = 0; i < captures.size(); ++i) {
      if (!captures[i].fd.valid()) continue;
      any_open = true;
      pfds.push_back({captures[i].fd.get(), POLLIN, 0});
      which.push_back(i);
    }
    if (!exited && pidfd.valid()) pfds.push_back({pidfd.get(), POLLIN, 0});
    if (!any_open && (exited || !pidfd.valid())) break;
    const Clock::time_point now = Clock::now();
    Clock::time_point until = grace_deadline ? *grace_deadline : deadline;
    if (!grace_deadline && exited) {
      grace_deadline = now + std::chrono::seconds(1);
      until = *grace_deadline;
    }
    if (now >= until) {
      if (grace_deadline) break;  // stragglers: give up on their pipes
      killed_for_wall = true;
      kill_tree();
      grace_deadline = now + std::chrono::seconds(2);
      continue;
    }
    int timeout_ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count() + 1);
    int n = poll(pfds.data(), pfds.size(), timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      kill_tree();
      waitpid(pid, nullptr, 0);
      return Errno("sandbox: poll");
    }
    for (size_t k = 0; k < pfds.size(); ++k) {
      if (pfds[k].revents == 0) continue;
      if (k >= which.size()) {
        exited = true;
        continue;
      }
      Capture& c = captures[which[k]];
      ssize_t got = read(c.fd.get(), buf.data(), buf.size());
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (got <= 0) {
        c.fd.Reset();
        continue;
      }
      int64_t room = c.cap - static_cast<int64_t>(c.data->size());
      if (got > room) {
        c.data->append(buf.data(), static_cast<size_t>(std::max<int64_t>(room, 0)));
        c.truncated = true;
        c.fd.Reset();
        if (!killed_for_output && !killed_for_wall) {
          killed_for_output = true;
          kill_tree();
          grace_deadline = Clock::now() + std::chrono::seconds(2);
        }
      } else {
        c.data->append(buf.data(), static_cast<size_t>(got));
      }
    }
  }
  if (!exited) kill_tree();
  int wait_status = 0;
  rusage usage{};
  while (wait4(pid, &wait_status, 0, &usage) < 0 && errno == EINTR) {
  }
  if (cgroup) cgroup->KillAll();
  result.wall_time = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  result.stdout_truncated = captures[0].truncated;
  result.stderr_truncated = captures[1].truncated;
  result.cpu_time = std::chrono::milliseconds(
      (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000 +
      (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000);

  // bwrap writes {"child-pid": N} once it has forked the sandbox; a failure setting up the mounts
  // after that shows as exit 1 with bwrap's own message. (A program could imitate the latter; it
  // gains an infrastructure error, which callers retry a bounded number of times.)
  const bool sandbox_started =
      status_json.find("child-pid") != std::string::npos &&
      !(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 1 &&
        result.stderr_data.rfind("bwrap: ", 0) == 0);
  if (!sandbox_started && !killed_for_wall) {
    return absl::InternalError(absl::StrCat("sandbox: bubblewrap failed to start (status ",
                                            wait_status, "): ", result.stderr_data));
  }
  if (WIFSIGNALED(wait_status)) {
    result.signal = WTERMSIG(wait_status);
  } else {
    const int code = WEXITSTATUS(wait_status);
    // bwrap (and the collecting shell) report "killed by signal N" as exit status 128+N.
    if (code > 128 && code < 128 + NSIG) {
      result.signal = code - 128;
    } else {
      result.exit_code = code;
    }
  }

  CgroupUsage cg;
  if (cgroup) cg = cgroup->ReadUsage();
  result.peak_memory_bytes = cg.peak_memory_bytes;
  if (!result.peak_memory_bytes && usage.ru_maxrss > 0) {
    result.peak_memory_bytes = static_cast<int64_t>(usage.ru_maxrss) * 1024;
  }
  const bool cpu_hit = result.signal == SIGXCPU ||
                       (result.signal == SIGKILL && result.cpu_time >= limits.cpu_time);
  auto reach = [&](bool hit, Limit limit) {
    if (hit) result.limits_reached.push_back(limit);
  };
  reach(killed_for_wall, Limit::kWallTime);
  reach(killed_for_output, Limit::kOutput);
  reach(cg.oom_killed, Limit::kMemory);
  reach(cpu_hit, Limit::kCpuTime);
  reach(result.signal == SIGXFSZ, Limit::kFileSize);
  reach(cg.pids_exhausted, Limit::kPids);
  const bool failed = result.signal != 0 || result.exit_code != 0;
  if (killed_for_wall) {
    result.limit = Limit::kWallTime;
  } else if (killed_for_output) {
    result.limit = Limit::kOutput;
  } else if (cg.oom_killed && failed) {
    result.limit = Limit::kMemory;
  } else if (cpu_hit) {
    result.limit = Limit::kCpuTime;
  } else if (result.signal == SIGXFSZ) {
    result.limit = Limit::kFileSize;
  } else if (cg.pids_exhausted && failed) {
    result.limit = Limit::kPids;
  }
  for (size_t i = 0; i < request.collect.size(); ++i) {
    if (!collected[i].empty()) result.collected[request.collect[i]] = std::move(collected[i]);
  }
  return result;
}

}  // namespace temper::sandbox
