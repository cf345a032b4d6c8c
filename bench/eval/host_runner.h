// HostRunner: a Sandbox that is not one. Runs the very commands rusteval's Evaluator issues
// directly on the host — /opt/rust, /opt/crates and /work rewritten to the toolchain, the crate
// cache and a fresh temporary directory — with no namespaces, seccomp, cgroups or limits. The
// benchmark's unsandboxed baseline; never use it for untrusted code. Thread-safe.
#pragma once

#include <map>
#include <string>

#include "libs/sandbox/sandbox.h"

namespace temper::bench {

class HostRunner final : public sandbox::Sandbox {
 public:
  // `mounts`: sandbox path prefix → host directory (e.g. "/opt/rust" → the toolchain).
  explicit HostRunner(std::map<std::string, std::string> mounts) : mounts_(std::move(mounts)) {}
  absl::StatusOr<sandbox::Result> Run(const sandbox::Request& request) override;

 private:
  const std::map<std::string, std::string> mounts_;
};

}  // namespace temper::bench
