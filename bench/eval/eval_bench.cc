// Sandboxed evaluation throughput against its baselines, in one run on the same samples (the first
// --limit HumanEval-X reference solutions):
//   sandboxed_full   temper's Evaluator in bubblewrap sandboxes: clippy check, build tests, run them
//   host_full        the very same commands run directly on the host (HostRunner), no sandbox
//   sandboxed_check  stage 1 only (clippy-driver --emit=metadata), sandboxed
//   host_check       stage 1 only, on the host
//   cargo_check      `cargo check` per sample in a copy of a warm template project (offline,
//                    Debian's vendored registry as a directory source), one copy per thread
// Every mode runs --parallelism samples at once. Prints a table and, with --json, writes the numbers.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "bench/eval/host_runner.h"
#include "libs/rusteval/evaluator.h"
#include "libs/sandbox/bwrap_sandbox.h"
#include "nlohmann/json.hpp"
#include "services/eval-worker/batch.h"
#include "services/eval-worker/runner.h"
#include "services/eval-worker/summary.h"

namespace {

namespace fs = std::filesystem;
namespace ev = temper::evalworker;
namespace re = temper::rusteval;

struct ModeResult {
  std::string name;
  size_t samples = 0;
  size_t passed = 0;  // passed (full) or compiled (check modes)
  double seconds = 0;
  double per_second() const { return seconds > 0 ? samples / seconds : 0; }
};

ModeResult RunEvaluator(const std::string& name, temper::sandbox::Sandbox* sb, const re::Toolchain& tc,
                        const re::CrateSet& crates, const std::vector<re::Sample>& samples, int parallelism,
                        bool check_only) {
  re::Evaluator evaluator(sb, tc, crates);
  ev::RunOptions o;
  o.parallelism = parallelism;
  ModeResult m{name, samples.size()};
  auto start = std::chrono::steady_clock::now();
  ev::RunOutcome out = ev::RunSamples(samples, [&](const re::Sample& s) { return evaluator.Evaluate(s); }, o);
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!out.infrastructure.ok()) {
    std::cerr << name << ": " << out.infrastructure << "\n";
    std::exit(1);
  }
  for (const auto& v : out.verdicts) m.passed += check_only ? v->compiled : v->passed;
  return m;
}

// Runs argv with env in dir; stdout/stderr to /dev/null. Returns the exit code.
int RunQuiet(const std::vector<std::string>& argv, const std::vector<std::string>& env, const fs::path& dir) {
  pid_t pid = fork();
  if (pid == 0) {
    if (chdir(dir.c_str()) != 0) _exit(126);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    std::vector<char*> a, e;
    std::vector<std::string> args = argv, envs = env;
    for (auto& s : args) a.push_back(s.data());
    a.push_back(nullptr);
    for (auto& s : envs) e.push_back(s.data());
    e.push_back(nullptr);
    execve(a[0], a.data(), e.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

ModeResult RunCargoCheck(const re::Toolchain& tc, const std::vector<re::Sample>& samples, int parallelism,
                         const fs::path& scratch, double* setup_seconds) {
  const fs::path tmpl = scratch / "template";
  fs::remove_all(scratch);
  fs::create_directories(tmpl / "src");
  fs::create_directories(scratch / "home");
  std::ofstream(scratch / "home/config.toml") << "[source.crates-io]\nreplace-with = \"debian\"\n"
                                                 "[source.debian]\ndirectory = \"/usr/share/cargo/registry\"\n"
                                                 "[net]\noffline = true\n";
  {
    std::ofstream toml(tmpl / "Cargo.toml");
    toml << "[package]\nname = \"sample\"\nversion = \"0.0.0\"\nedition = \"2021\"\n[lib]\npath = \"src/lib.rs\"\n"
            "[dependencies]\n";
    for (const auto& c : re::VettedCrates()) toml << c.name << " = " << c.dependency << "\n";
  }
  std::ofstream(tmpl / "src/lib.rs") << "";
  const std::string bin = tc.dir + "/bin";
  const std::vector<std::string> env = {"CARGO_HOME=" + (scratch / "home").string(), "RUSTC=" + bin + "/rustc",
                                        "PATH=" + bin + ":/usr/bin:/bin", "HOME=" + (scratch / "home").string(),
                                        "CARGO_TERM_COLOR=never"};
  const std::vector<std::string> check = {bin + "/cargo", "check", "--offline", "--quiet", "--message-format=json"};
  auto start = std::chrono::steady_clock::now();
  if (RunQuiet(check, env, tmpl) != 0) {
    std::cerr << "cargo check of the empty template failed\n";
    std::exit(1);
  }
  // One copy per thread, each checked once so that cargo's fingerprints (mtime-based for the local
  // package) are warm there: only the sample's own crate is checked per sample.
  for (int t = 0; t < parallelism; ++t) {
    const fs::path proj = scratch / ("proj-" + std::to_string(t));
    fs::copy(tmpl, proj, fs::copy_options::recursive);
    RunQuiet(check, env, proj);
  }
  *setup_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  ModeResult m{"cargo_check", samples.size()};
  std::atomic<size_t> next{0}, compiled{0};
  start = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < parallelism; ++t) {
    pool.emplace_back([&, t] {
      const fs::path proj = scratch / ("proj-" + std::to_string(t));
      for (size_t i; (i = next.fetch_add(1)) < samples.size();) {
        std::ofstream(proj / "src/lib.rs") << re::Assemble(samples[i]).check_source;
        compiled += RunQuiet(check, env, proj) == 0;
      }
    });
  }
  for (auto& t : pool) t.join();
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  m.passed = compiled;
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  int limit = 40;
  int parallelism = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string benchmark_dir = ev::DefaultBenchmarkDir();
  std::string crate_cache;
  std::string json_out;
  std::string scratch = "/tmp/temper-eval-bench";
  bool skip_cargo = false;
  CLI::App app{"sandboxed evaluation vs unsandboxed and per-sample cargo check"};
  app.add_option("--limit", limit, "HumanEval-X reference solutions to evaluate (0: all 164)")->capture_default_str();
  app.add_option("--parallelism", parallelism, "samples at once, in every mode")->capture_default_str();
  app.add_option("--benchmark-dir", benchmark_dir, "where humaneval-x-rust.jsonl.gz lives")->capture_default_str();
  app.add_option("--crate-cache", crate_cache, "prebuilt crate cache root");
  app.add_option("--json", json_out, "write the results here as JSON");
  app.add_option("--scratch", scratch, "cargo template projects go here (wiped)")->capture_default_str();
  app.add_flag("--skip-cargo", skip_cargo, "leave out the cargo check baseline");
  CLI11_PARSE(app, argc, argv);

  auto tc = re::FindToolchain();
  if (!tc.ok()) {
    std::cerr << tc.status() << "\n";
    return 1;
  }
  if (!crate_cache.empty()) crate_cache = fs::absolute(crate_cache).string();
  auto crates = re::EnsureCrates(*tc, crate_cache);
  if (!crates.ok()) {
    std::cerr << crates.status() << "\n";
    return 1;
  }
  auto sb = temper::sandbox::BwrapSandbox::Create(re::EvalSandboxConfig(*tc, *crates));
  if (!sb.ok()) {
    std::cerr << sb.status() << "\n";
    return 1;
  }
  temper::bench::HostRunner host({{re::kToolchainMount, tc->dir}, {re::kCratesMount, crates->dir}});
  ev::BenchmarkLibrary lib(benchmark_dir);
  auto bench = lib.Get(ev::kHumanEvalX);
  if (!bench.ok()) {
    std::cerr << bench.status() << "\n";
    return 1;
  }
  std::vector<re::Sample> full = ev::ReferenceSamples(**bench, limit);
  std::vector<re::Sample> check_only;
  for (const auto& s : full) {
    auto t = std::make_shared<re::Task>(*s.task);
    t->tests.clear();  // no tests: the Evaluator stops after stage 1
    check_only.push_back({t, s.completion});
  }
  // Warm the page cache (toolchain, crates) so the first mode is not charged for it.
  std::vector<re::Sample> warm(full.begin(), full.begin() + std::min<size_t>(full.size(), 2));
  RunEvaluator("warm", &host, *tc, *crates, warm, parallelism, false);

  std::vector<ModeResult> results;
  results.push_back(RunEvaluator("sandboxed_full", sb->get(), *tc, *crates, full, parallelism, false));
  results.push_back(RunEvaluator("host_full", &host, *tc, *crates, full, parallelism, false));
  results.push_back(RunEvaluator("sandboxed_check", sb->get(), *tc, *crates, check_only, parallelism, true));
  results.push_back(RunEvaluator("host_check", &host, *tc, *crates, check_only, parallelism, true));
  double cargo_setup = 0;
  if (!skip_cargo) results.push_back(RunCargoCheck(*tc, full, parallelism, scratch, &cargo_setup));

  auto find = [&](const std::string& n) -> const ModeResult* {
    for (const auto& r : results) {
      if (r.name == n) return &r;
    }
    return nullptr;
  };
  std::cout << absl::StrFormat("%-16s %8s %8s %10s %10s\n", "mode", "samples", "ok", "seconds", "samples/s");
  for (const auto& r : results) {
    std::cout << absl::StrFormat("%-16s %8d %8d %10.2f %10.2f\n", r.name, r.samples, r.passed, r.seconds,
                                 r.per_second());
  }
  nlohmann::json j;
  j["parallelism"] = parallelism;
  j["samples"] = full.size();
  for (const auto& r : results) {
    j["modes"][r.name] = {{"samples", r.samples}, {"ok", r.passed}, {"seconds", r.seconds}, {"per_second", r.per_second()}};
  }
  auto ratio = [&](const char* a, const char* b) {
    const ModeResult *x = find(a), *y = find(b);
    return x && y && y->per_second() > 0 ? x->per_second() / y->per_second() : 0.0;
  };
  j["ratios"]["sandboxed_full_vs_host_full"] = ratio("sandboxed_full", "host_full");
  j["ratios"]["sandboxed_check_vs_host_check"] = ratio("sandboxed_check", "host_check");
  if (!skip_cargo) {
    j["ratios"]["sandboxed_check_vs_cargo_check"] = ratio("sandboxed_check", "cargo_check");
    j["ratios"]["sandboxed_full_vs_cargo_check"] = ratio("sandboxed_full", "cargo_check");
    j["cargo_template_setup_seconds"] = cargo_setup;
  }
  std::cout << "\n";
  for (const auto& [k, v] : j["ratios"].items()) std::cout << absl::StrFormat("%-34s %.2fx\n", k, v.get<double>());
  if (!json_out.empty()) std::ofstream(json_out) << j.dump(2) << "\n";
  return 0;
}
