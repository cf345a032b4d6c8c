// Small POSIX path helpers for libs/model (joining, existence, mkdir -p, rm -r, temp dirs).
//
// Why not std::filesystem: PyTorch's pip wheels (2.5 and later; pytorch/pytorch#133437) link parts
// of libstdc++ statically (the manylinux toolchain's libstdc++_nonshared.a) and export those
// std::filesystem symbols from libtorch_cpu.so. A program linked against that libtorch has its
// calls to them bound to libtorch's copies rather than the system libstdc++'s, whose data layout
// they need not share: std::filesystem::remove_all / create_directories crashed
// (SIGSEGV) in our tests on PyTorch 2.11 while the same code passes on Debian's libtorch 1.13.
// Everything in libs/model that touches the file system therefore goes through these helpers,
// which use only libc.
#pragma once

#include <string>
#include <string_view>

#include "libs/common/status.h"

namespace temper::model {

// `dir` + "/" + `name` (no separator doubled; `name` is returned as is when absolute or when `dir`
// is empty).
std::string JoinPath(std::string_view dir, std::string_view name);
// True when `path` names an existing file or directory (following symlinks).
bool PathExists(const std::string& path);
// Creates `path` and its missing parents (mode 0755). OK when it already is a directory.
absl::Status MakeDirs(const std::string& path);
// Removes `path` recursively (files, directories, symlinks without following them). OK when
// `path` does not exist.
absl::Status RemoveTree(const std::string& path);
// A new, empty directory $TMPDIR/<prefix>XXXXXX (mkdtemp; /tmp when TMPDIR is unset).
absl::StatusOr<std::string> MakeTempDir(const std::string& prefix);

}  // namespace temper::model
