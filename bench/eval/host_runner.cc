#include "bench/eval/host_runner.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace temper::bench {
namespace fs = std::filesystem;

namespace {

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

absl::StatusOr<sandbox::Result> HostRunner::Run(const sandbox::Request& request) {
  char tmpl[] = "/tmp/temper-host-XXXXXX";
  if (!mkdtemp(tmpl)) return absl::InternalError("mkdtemp failed");
  const fs::path base = tmpl;
  const fs::path work = base / "work";
  fs::create_directories(work / ".tmp");
  std::vector<std::pair<std::string, std::string>> rewrite;
  for (const auto& [from, to] : mounts_) rewrite.emplace_back(from, to);
  rewrite.emplace_back(std::string(sandbox::kWorkDir), work.string());
  auto host = [&](const std::string& s) { return absl::StrReplaceAll(s, rewrite); };

  for (const auto& f : request.inputs) {
    fs::path p = work / f.path;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << f.contents;
    if (f.executable) fs::permissions(p, fs::perms::owner_all, fs::perm_options::add);
  }
  std::vector<std::string> argv, env;
  for (const auto& a : request.argv) argv.push_back(host(a));
  for (const auto& [k, v] : request.env) env.push_back(k + "=" + host(v));
  env.push_back("TMPDIR=" + (work / ".tmp").string());

  const auto start = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    if (chdir(work.c_str()) != 0) _exit(126);
    int out = open((base / "stdout").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open((base / "stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    std::vector<char*> a, e;
    for (auto& s : argv) a.push_back(s.data());
    a.push_back(nullptr);
    for (auto& s : env) e.push_back(s.data());
    e.push_back(nullptr);
    execve(a[0], a.data(), e.data());
    _exit(127);
  }
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  sandbox::Result r;
  r.wall_time = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  r.cpu_time = std::chrono::milliseconds(ru.ru_utime.tv_sec * 1000 + ru.ru_utime.tv_usec / 1000 +
                                         ru.ru_stime.tv_sec * 1000 + ru.ru_stime.tv_usec / 1000);
  r.peak_memory_bytes = static_cast<int64_t>(ru.ru_maxrss) * 1024;
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.stdout_data = ReadAll(base / "stdout");
  r.stderr_data = ReadAll(base / "stderr");
  for (const auto& c : request.collect) {
    fs::path p = work / c;
    if (fs::exists(p)) r.collected[c] = ReadAll(p);
  }
  std::error_code ec;
  fs::remove_all(base, ec);
  return r;
}

}  // namespace temper::bench
