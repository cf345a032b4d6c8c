// BwrapSandbox: the real Sandbox, one bubblewrap invocation per Run.
//
// Each run gets new user, mount, pid, ipc, uts, network and cgroup namespaces; uid/gid 65534 with
// every capability dropped; a new session; death with its parent. The host's /usr and the
// configured read-only mounts (toolchain, prebuilt crates) are the only host files visible; a
// size-capped tmpfs at /work is the only writable place. The seccomp policy of seccomp_policy.h
// is loaded with `--seccomp FD`; a fresh cgroup (cgroup.h) caps memory, processes and CPU; rlimits
// cap file size, open files, CPU time and core dumps; a wall-clock timeout kills the whole tree.
// Files enter through memfds (`--file FD`) and leave through pipes (Request::collect).
// When started by root, and every mount is readable by others all along its path, bubblewrap
// itself runs as uid/gid 65534 (an unprivileged user namespace), so nothing in the sandbox maps to
// host root. Where a mount is not (a toolchain under /root, mode 700), bubblewrap must resolve it
// as root; the sandbox is then uid 65534 inside a user namespace that maps it to the caller, still
// with no capabilities and seeing only the read-only mounts.
// Thread-safe: Run may be called concurrently.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "libs/sandbox/sandbox.h"

namespace temper::sandbox {

// A host directory shown read-only at `sandbox_path`. It is opened by the (possibly privileged)
// caller and handed to bubblewrap as an fd, so it may live where uid 65534 cannot walk (/root).
struct ReadOnlyMount {
  std::string host_path;
  std::string sandbox_path;
};

struct BwrapConfig {
  std::string bwrap_path = "/usr/bin/bwrap";
  std::vector<ReadOnlyMount> mounts;  // besides the system ones (/usr and its /bin, /lib links)
  std::string cgroup_root = "/sys/fs/cgroup";
  // Without cgroups there are no memory/pids/CPU limits; by default Run then fails instead.
  bool require_cgroups = true;
  int sandbox_uid = 65534;
};

// How the system part of the file tree is laid out: /usr bound read-only, and for each of /bin,
// /sbin, /lib, /lib64 either the host's symlink (merged /usr) or a read-only bind.
struct SystemLayout {
  std::vector<std::pair<std::string, std::string>> symlinks;  // (target, link path)
  std::vector<std::string> ro_binds;                          // same path outside and inside
};
SystemLayout DetectSystemLayout();

// The fd numbers a bubblewrap command line refers to, as they will be in bwrap's process.
struct BwrapFds {
  int seccomp = -1;
  int json_status = -1;
  std::vector<int> mounts;   // one per BwrapConfig::mounts entry
  std::vector<int> inputs;   // one per Request::inputs entry
  std::vector<int> collect;  // one per Request::collect entry; must be 3..9 (see docs/eval.md)
};

// The full argv (bwrap first) for `request`. Pure; exposed for tests.
// REQUIRES: request.collect.size() == fds.collect.size(), and so on for mounts and inputs.
std::vector<std::string> BuildBwrapArgv(const BwrapConfig& config, const SystemLayout& layout,
                                        const Request& request, const BwrapFds& fds);

// True when the bubblewrap binary exists and can create the namespaces it needs here; the reason
// otherwise. Used by tests to skip where sandboxing is impossible.
absl::Status CheckBwrapUsable(const BwrapConfig& config);

// True when uid 65534 could reach `path`: it and every ancestor readable and searchable by others.
bool ReachableByOthers(const std::string& path);

class BwrapSandbox final : public Sandbox {
 public:
  // Compiles the seccomp policy once. Fails if it cannot be built.
  static absl::StatusOr<std::unique_ptr<BwrapSandbox>> Create(BwrapConfig config);

  absl::StatusOr<Result> Run(const Request& request) override;

 private:
  BwrapSandbox(BwrapConfig config, SystemLayout layout, std::string seccomp_bpf)
      : config_(std::move(config)), layout_(std::move(layout)), seccomp_bpf_(std::move(seccomp_bpf)) {}

  const BwrapConfig config_;
  const SystemLayout layout_;
  const std::string seccomp_bpf_;
  bool mounts_reachable_by_others_ = true;
  std::atomic<uint64_t> next_run_{0};
};

}  // namespace temper::sandbox
