// The Rust toolchain on the host, and the vetted dependency crates prebuilt for it.
//
// Crates come from Debian's librust-*-dev sources (/usr/share/cargo/registry) through cargo's
// directory source, offline, built once per (toolchain version, crate set, registry contents) and
// kept under a cache directory; every sample then links them with --extern. Building runs the
// crates' build scripts unsandboxed: they are vetted Debian sources, not model output.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "libs/common/status.h"

namespace temper::rusteval {

struct Toolchain {
  std::string dir;      // host directory with bin/rustc, bin/clippy-driver, bin/cargo, lib/
  std::string version;  // `rustc -vV` output: part of the crate cache key
};

// `dir` if given, else $TEMPER_RUST_TOOLCHAIN, else the rustup stable toolchain in $HOME or /root.
// NotFound if there is none with both rustc and clippy-driver.
absl::StatusOr<Toolchain> FindToolchain(const std::string& dir = "");

struct CrateSpec {
  std::string name;         // as `--extern` names it (serde_json)
  std::string dependency;   // Cargo.toml dependency line's right-hand side
};
// rand, regex, md5 (HumanEval-X needs them), serde (+derive), serde_json, anyhow, thiserror,
// itertools.
const std::vector<CrateSpec>& VettedCrates();

struct CrateSet {
  std::string dir;                             // host directory holding the built rlibs
  std::map<std::string, std::string> externs;  // crate name → rlib file name in `dir`
};

// Returns the cached crate build for `toolchain`, building it first if absent. Safe against
// concurrent callers in other threads and processes (a file lock serialises builds).
// `cache_root`: "" means $TEMPER_CRATE_CACHE, else $XDG_CACHE_HOME/temper/crates, else
// ~/.cache/temper/crates.
absl::StatusOr<CrateSet> EnsureCrates(const Toolchain& toolchain, std::string cache_root = "",
                                      const std::string& registry = "/usr/share/cargo/registry");

}  // namespace temper::rusteval
