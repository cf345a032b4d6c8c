#include "libs/sandbox/seccomp_policy.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "gtest/gtest.h"

namespace temper::sandbox {
namespace {

TEST(SeccompPolicyTest, DeniesTheRequiredSyscalls) {
  const auto& denied = DeniedSyscalls();
  for (const char* name : {"ptrace", "mount", "bpf", "keyctl", "perf_event_open", "userfaultfd",
                           "io_uring_setup", "io_uring_enter", "io_uring_register"}) {
    EXPECT_NE(std::find(denied.begin(), denied.end(), name), denied.end()) << name;
  }
}

TEST(SeccompPolicyTest, CompilesToWholeBpfInstructions) {
  auto bpf = BuildSeccompBpf();
  ASSERT_TRUE(bpf.ok()) << bpf.status();
  EXPECT_GT(bpf->size(), 0u);
  EXPECT_EQ(bpf->size() % sizeof(sock_filter), 0u);
}

// Loads the filter in a forked child and reports what each probe got, one bit per expectation.
TEST(SeccompPolicyTest, LoadedFilterAllowsUnixSocketsOnlyAndDeniesPtrace) {
  auto bpf = BuildSeccompBpf();
  ASSERT_TRUE(bpf.ok()) << bpf.status();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    sock_fprog prog{static_cast<unsigned short>(bpf->size() / sizeof(sock_filter)),
                    reinterpret_cast<sock_filter*>(bpf->data())};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(100);
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) _exit(101);
    int failures = 0;
    int unix_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (unix_fd < 0) failures |= 1;
    if (socket(AF_INET, SOCK_STREAM, 0) >= 0 || errno != EAFNOSUPPORT) failures |= 2;
    if (socket(AF_INET6, SOCK_DGRAM, 0) >= 0 || errno != EAFNOSUPPORT) failures |= 4;
    if (socket(AF_NETLINK, SOCK_RAW, 0) >= 0) failures |= 8;
    if (ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) == 0 || errno != EPERM) failures |= 16;
    if (syscall(SYS_io_uring_setup, 1, nullptr) == 0 || errno != EPERM) failures |= 32;
    if (syscall(SYS_unshare, 0x10000000 /*CLONE_NEWUSER*/) == 0) failures |= 64;
    _exit(failures);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "failed probe bits " << WEXITSTATUS(status);
}

}  // namespace
}  // namespace temper::sandbox
