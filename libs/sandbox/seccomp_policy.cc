#include "libs/sandbox/seccomp_policy.h"

#include <seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <sched.h>

#include "absl/strings/str_cat.h"

namespace temper::sandbox {
namespace {

struct ContextDeleter {
  void operator()(scmp_filter_ctx ctx) const { seccomp_release(ctx); }
};
using Context = std::unique_ptr<void, ContextDeleter>;

absl::Status Check(int rc, absl::string_view what) {
  if (rc < 0) return absl::InternalError(absl::StrCat("seccomp: ", what, ": errno ", -rc));
  return absl::OkStatus();
}

}  // namespace

const std::vector<std::string>& DeniedSyscalls() {
  static const auto* const kDenied = new std::vector<std::string>{
      // Debugging and inspecting other processes.
      "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
      // Filesystem and namespace manipulation.
      "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "open_by_handle_at",
      "name_to_handle_at", "fsopen", "fsmount", "fsconfig", "fspick", "move_mount", "open_tree",
      "mount_setattr",
      // Kernel attack surface a test program never needs.
      "bpf", "keyctl", "add_key", "request_key", "perf_event_open", "userfaultfd",
      "io_uring_setup", "io_uring_enter", "io_uring_register", "kexec_load", "kexec_file_load",
      "init_module", "finit_module", "delete_module", "reboot", "swapon", "swapoff", "acct",
      "quotactl", "syslog", "iopl", "ioperm", "lookup_dcookie", "vhangup", "personality",
      "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "uselib", "nfsservctl",
  };
  return *kDenied;
}

absl::StatusOr<std::string> BuildSeccompBpf() {
  // Default allow; the native arch only, so foreign syscall ABIs hit the bad-arch action (kill).
  Context ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) return absl::InternalError("seccomp_init failed");
  // The whole process, not just the offending thread (a test harness would wait on it forever).
  RETURN_IF_ERROR(Check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS),
                        "badarch action"));
  for (const std::string& name : DeniedSyscalls()) {
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture or libseccomp
    RETURN_IF_ERROR(Check(seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), nr, 0), name));
  }
  // clone3 passes flags in memory the filter cannot read: make glibc fall back to clone().
  RETURN_IF_ERROR(Check(
      seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0), "clone3"));
  // No new namespaces through clone() either (unshare/setns are denied above): one rule per flag,
  // since a rule can only test "arg & mask == value".
  for (scmp_datum_t flag : {CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID,
                            CLONE_NEWNET, CLONE_NEWCGROUP}) {
    RETURN_IF_ERROR(Check(seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                                           SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)),
                          "clone"));
  }
  // Sockets: AF_UNIX only.
  RETURN_IF_ERROR(Check(seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket),
                                         1, SCMP_A0(SCMP_CMP_NE, AF_UNIX)),
                        "socket"));
  RETURN_IF_ERROR(Check(seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EAFNOSUPPORT),
                                         SCMP_SYS(socketpair), 1, SCMP_A0(SCMP_CMP_NE, AF_UNIX)),
                        "socketpair"));

  int fd = memfd_create("temper-seccomp", MFD_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("memfd_create: errno ", errno));
  absl::Status status = Check(seccomp_export_bpf(ctx.get(), fd), "export");
  std::string bpf;
  if (status.ok()) {
    off_t size = lseek(fd, 0, SEEK_END);
    bpf.resize(static_cast<size_t>(size));
    if (pread(fd, bpf.data(), bpf.size(), 0) != size) status = absl::InternalError("seccomp: read");
  }
  close(fd);
  RETURN_IF_ERROR(status);
  return bpf;
}

}  // namespace temper::sandbox
