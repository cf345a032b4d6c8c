#include "libs/rusteval/crate_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace temper::rusteval {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs argv with exactly `env`, in `cwd`, stdout and stderr to files. Returns the exit status.
absl::StatusOr<int> RunTool(const std::vector<std::string>& args, const std::vector<std::string>& env,
                            const fs::path& cwd, const fs::path& out, const fs::path& err) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  int out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err_fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out_fd < 0 || err_fd < 0) return absl::InternalError("crate cache: cannot open log files");
  std::string dir = cwd.string();
  pid_t pid = fork();
  if (pid == 0) {
    if (chdir(dir.c_str()) != 0) _exit(127);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(out_fd);
  close(err_fd);
  if (pid < 0) return absl::InternalError("crate cache: fork failed");
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return absl::InternalError("crate cache: waitpid failed");
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

uint64_t Fnv1a(std::string_view s, uint64_t h = 1469598103934665603ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string DefaultCacheRoot() {
  if (const char* v = std::getenv("TEMPER_CRATE_CACHE"); v && *v) return v;
  if (const char* v = std::getenv("XDG_CACHE_HOME"); v && *v) return absl::StrCat(v, "/temper/crates");
  const char* home = std::getenv("HOME");
  return absl::StrCat(home && *home ? home : "/tmp", "/.cache/temper/crates");
}

}  // namespace

absl::StatusOr<Toolchain> FindToolchain(const std::string& dir) {
  std::vector<std::string> candidates;
  if (!dir.empty()) {
    candidates.push_back(dir);
  } else {
    if (const char* v = std::getenv("TEMPER_RUST_TOOLCHAIN"); v && *v) candidates.push_back(v);
    if (const char* home = std::getenv("HOME"); home && *home) {
      candidates.push_back(absl::StrCat(home, "/.rustup/toolchains/stable-x86_64-unknown-linux-gnu"));
    }
    candidates.push_back("/root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu");
  }
  for (const std::string& c : candidates) {
    if (access((c + "/bin/rustc").c_str(), X_OK) != 0 ||
        access((c + "/bin/clippy-driver").c_str(), X_OK) != 0) {
      continue;
    }
    fs::path tmp = fs::temp_directory_path() / absl::StrFormat("temper-rustc-vv-%d", getpid());
    auto rc = RunTool({c + "/bin/rustc", "-vV"}, {}, "/", tmp.string() + ".out", tmp.string() + ".err");
    std::string version = ReadFile(tmp.string() + ".out");
    fs::remove(tmp.string() + ".out");
    fs::remove(tmp.string() + ".err");
    if (!rc.ok() || *rc != 0 || version.empty()) continue;
    return Toolchain{fs::canonical(c).string(), version};
  }
  return absl::NotFoundError("no Rust toolchain with rustc and clippy-driver found (set TEMPER_RUST_TOOLCHAIN)");
}

const std::vector<CrateSpec>& VettedCrates() {
  static const auto* const kCrates = new std::vector<CrateSpec>{
      {"rand", "\"0.8\""},
      {"regex", "\"1\""},
      {"md5", "\"0.7\""},
      {"serde", "{ version = \"1\", features = [\"derive\"] }"},
      {"serde_json", "\"1\""},
      {"anyhow", "\"1\""},
      {"thiserror", "\"1\""},
      {"itertools", "\"0.10\""},
  };
  return *kCrates;
}

absl::StatusOr<CrateSet> EnsureCrates(const Toolchain& toolchain, std::string cache_root,
                                      const std::string& registry) {
  if (cache_root.empty()) cache_root = DefaultCacheRoot();
  // Key: toolchain version, crate set, and which crate versions the registry holds.
  uint64_t key = Fnv1a(toolchain.version);
  for (const CrateSpec& c : VettedCrates()) key = Fnv1a(c.name + "=" + c.dependency + ";", key);
  std::error_code ec;
  std::vector<std::string> listing;
  for (const auto& entry : fs::directory_iterator(registry, ec)) listing.push_back(entry.path().filename());
  if (ec) return absl::FailedPreconditionError(absl::StrCat("crate registry ", registry, ": ", ec.message()));
  std::sort(listing.begin(), listing.end());
  for (const std::string& name : listing) key = Fnv1a(name + ";", key);
  const fs::path root = fs::absolute(cache_root);  // cargo resolves relative paths elsewhere
  const fs::path dir = root / absl::StrFormat("%016x", key);
  const fs::path manifest = dir / "externs.json";

  auto load = [&]() -> absl::StatusOr<CrateSet> {
    json j = json::parse(ReadFile(manifest), nullptr, false);
    if (!j.is_object()) return absl::DataLossError(absl::StrCat("bad crate manifest ", manifest.string()));
    CrateSet set{(dir / "deps").string(), {}};
    for (const auto& [name, file] : j.items()) set.externs[name] = file.get<std::string>();
    return set;
  };
  if (fs::exists(manifest)) return load();

  fs::create_directories(root, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("crate cache ", root.string(), ": ", ec.message()));
  std::string lock_path = (root / (dir.filename().string() + ".lock")).string();
  int lock_fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0 || flock(lock_fd, LOCK_EX) != 0) return absl::InternalError("crate cache: lock failed");
  struct Unlock {
    int fd;
    ~Unlock() { close(fd); }
  } unlock{lock_fd};
  if (fs::exists(manifest)) return load();  // built by someone else while we waited

  const fs::path work = root / (dir.filename().string() + ".build");
  fs::remove_all(work, ec);
  fs::create_directories(work / "home", ec);
  fs::create_directories(work / "proj/src", ec);
  std::ofstream(work / "home/config.toml") << "[source.crates-io]\nreplace-with = \"debian\"\n"
                                           << "[source.debian]\ndirectory = \"" << registry << "\"\n"
                                           << "[net]\noffline = true\n";
  std::ofstream cargo_toml(work / "proj/Cargo.toml");
  cargo_toml << "[package]\nname = \"temper-crates\"\nversion = \"0.0.0\"\nedition = \"2021\"\n"
             << "[lib]\npath = \"src/lib.rs\"\n[profile.release]\ndebug = false\n[dependencies]\n";
  for (const CrateSpec& c : VettedCrates()) {
    cargo_toml << c.name << " = " << c.dependency << "\n";
  }
  cargo_toml.close();
  std::ofstream(work / "proj/src/lib.rs") << "";
  const std::string bin = toolchain.dir + "/bin";
  std::vector<std::string> env = {
      "CARGO_HOME=" + (work / "home").string(), "RUSTC=" + bin + "/rustc",
      "PATH=" + bin + ":/usr/bin:/bin", "HOME=" + (work / "home").string(),
      "CARGO_TARGET_DIR=" + (work / "target").string(), "CARGO_TERM_COLOR=never"};
  ASSIGN_OR_RETURN(int rc, RunTool({bin + "/cargo", "build", "--release", "--offline",
                                    "--message-format=json"},
                                   env, work / "proj", work / "cargo.json", work / "cargo.log"));
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("crate cache: cargo build failed (", rc, "): ",
                                            ReadFile(work / "cargo.log")));
  }
  // Which rlib is each vetted crate: from cargo's artifact messages, not from file-name guesses.
  std::map<std::string, std::string> externs;
  std::istringstream messages(ReadFile(work / "cargo.json"));
  std::string line;
  while (std::getline(messages, line)) {
    json m = json::parse(line, nullptr, false);
    if (!m.is_object() || m.value("reason", "") != "compiler-artifact") continue;
    std::string name = m["target"].value("name", "");
    for (const CrateSpec& c : VettedCrates()) {
      if (c.name != name) continue;
      for (const json& f : m["filenames"]) {
        std::string file = fs::path(f.get<std::string>()).filename();
        if (file.ends_with(".rlib")) externs[name] = file;
      }
    }
  }
  for (const CrateSpec& c : VettedCrates()) {
    if (!externs.contains(c.name)) return absl::InternalError(absl::StrCat("crate cache: no rlib for ", c.name));
  }
  const fs::path staged = root / (dir.filename().string() + ".staged");
  fs::remove_all(staged, ec);
  fs::create_directories(staged / "deps", ec);
  for (const auto& entry : fs::directory_iterator(work / "target/release/deps")) {
    const std::string ext = entry.path().extension();
    if (ext == ".rlib" || ext == ".rmeta" || ext == ".so") {
      fs::copy_file(entry.path(), staged / "deps" / entry.path().filename(), ec);
      if (ec) return absl::InternalError(absl::StrCat("crate cache: copy: ", ec.message()));
      fs::permissions(staged / "deps" / entry.path().filename(), fs::perms(0644), ec);
    }
  }
  fs::permissions(staged, fs::perms(0755), ec);
  fs::permissions(staged / "deps", fs::perms(0755), ec);
  std::ofstream(staged / "externs.json") << json(externs).dump(2);
  fs::rename(staged, dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("crate cache: rename: ", ec.message()));
  fs::remove_all(work, ec);
  return load();
}

}  // namespace temper::rusteval
