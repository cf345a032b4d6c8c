// The seccomp policy of every sandbox: allow by default, deny the syscalls an untrusted Rust
// program has no business making, and every socket family but AF_UNIX. Built with libseccomp and
// exported as classic BPF, the format bubblewrap's `--seccomp FD` loads.
#pragma once

#include <string>
#include <vector>

#include "libs/common/status.h"

namespace temper::sandbox {

// Names of the syscalls the policy denies outright (EPERM), as libseccomp spells them.
const std::vector<std::string>& DeniedSyscalls();

// The policy compiled to BPF for the native architecture. Other architectures' syscall ABIs
// (i386 `int 0x80`, x32) kill the process. Thread-safe.
absl::StatusOr<std::string> BuildSeccompBpf();

}  // namespace temper::sandbox
