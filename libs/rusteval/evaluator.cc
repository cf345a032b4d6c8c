#include "libs/rusteval/evaluator.h"

#include <filesystem>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace temper::rusteval {
namespace {

using sandbox::Limit;

constexpr char kSourceFile[] = "src.rs";
constexpr char kTestBinary[] = "t";

ErrorClass ClassOfLimit(Limit limit) {
  return (limit == Limit::kWallTime || limit == Limit::kCpuTime) ? ErrorClass::kTimeout
                                                                 : ErrorClass::kResourceLimit;
}

std::vector<std::pair<std::string, std::string>> BaseEnv() {
  return {{"PATH", "/usr/bin:/bin"}, {"HOME", "/work"}, {"RUST_BACKTRACE", "0"}};
}

int64_t Ms(std::chrono::milliseconds d) { return d.count(); }

}  // namespace

EvaluatorOptions::EvaluatorOptions() {
  // Compiling: rustc/clippy and the linker want room and threads; slow CI machines want time.
  check_limits.wall_time = std::chrono::seconds(60);
  check_limits.cpu_time = std::chrono::seconds(60);
  check_limits.memory_bytes = 1536LL << 20;
  check_limits.pids = 128;
  check_limits.cpus = 1;
  check_limits.file_size_bytes = 64LL << 20;
  check_limits.tmpfs_bytes = 256LL << 20;
  check_limits.output_bytes = 4LL << 20;
  build_limits = check_limits;
  build_limits.file_size_bytes = 128LL << 20;
  // Running tests: small and short.
  run_limits.wall_time = std::chrono::seconds(10);
  run_limits.cpu_time = std::chrono::seconds(10);
  run_limits.memory_bytes = 512LL << 20;
  run_limits.pids = 32;
  run_limits.file_size_bytes = 16LL << 20;
  run_limits.tmpfs_bytes = 128LL << 20;
  run_limits.output_bytes = 256LL << 10;
}

sandbox::BwrapConfig EvalSandboxConfig(const Toolchain& toolchain, const CrateSet& crates) {
  sandbox::BwrapConfig config;
  config.mounts = {{toolchain.dir, kToolchainMount}, {crates.dir, kCratesMount}};
  return config;
}

Evaluator::Evaluator(sandbox::Sandbox* sandbox, Toolchain toolchain, CrateSet crates,
                     EvaluatorOptions options)
    : sandbox_(sandbox),
      toolchain_(std::move(toolchain)),
      crates_(std::move(crates)),
      options_(std::move(options)) {
  std::error_code ec;
  linker_ = std::filesystem::canonical(options_.linker, ec).string();
  if (ec) linker_ = options_.linker;
  redactions_ = {{"/work/", ""},
                 {kToolchainMount, "<toolchain>"},
                 {kCratesMount, "<crates>"},
                 {"/usr/share/cargo/registry", "<registry>"}};
  if (!toolchain_.dir.empty()) redactions_[toolchain_.dir] = "<toolchain>";
  if (!crates_.dir.empty()) redactions_[crates_.dir] = "<crates>";
}

std::vector<std::string> Evaluator::CompilerArgs(const std::string& compiler) const {
  std::vector<std::string> args = {absl::StrCat(kToolchainMount, "/bin/", compiler),
                                   "--sysroot", kToolchainMount, "--edition", "2021",
                                   "--crate-name", "sample", "--error-format=json",
                                   "-C", "debuginfo=0",
                                   "-L", absl::StrCat("dependency=", kCratesMount)};
  for (const auto& [name, file] : crates_.externs) {
    args.push_back("--extern");
    args.push_back(absl::StrCat(name, "=", kCratesMount, "/", file));
  }
  return args;
}

Diagnostic Evaluator::RawFailure(const sandbox::Result& r) const {
  Diagnostic d;
  d.level = "error";
  d.message = absl::StrCat("compiler failed without diagnostics (exit ", r.exit_code, ", signal ",
                           r.signal, ")");
  // Non-JSON lines only: an ICE report, a loader error.
  std::string text;
  std::istringstream in(r.stderr_data);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] != '{') absl::StrAppend(&text, line, "\n");
  }
  if (text.size() > 2048) text = text.substr(text.size() - 2048);
  d.rendered = RedactPaths(text, redactions_);
  return d;
}

std::vector<Diagnostic> Evaluator::Diagnostics(const std::string& stderr_json) const {
  std::vector<Diagnostic> diags = ParseDiagnostics(stderr_json);
  for (Diagnostic& d : diags) RedactPaths(d, redactions_);
  return diags;
}

absl::StatusOr<Verdict> Evaluator::Evaluate(const Sample& sample) const {
  Verdict v;
  v.task_id = sample.task ? sample.task->id : "";
  const AssembledSources sources = Assemble(sample);
  if (sample.completion.find_first_not_of(" \t\r\n") == std::string::npos) {
    v.error_class = ErrorClass::kNoCode;
    return v;
  }
  if (options_.syntax_metrics) v.syntax = ComputeSyntaxMetrics(sources.check_source);
  auto fail_on_limit = [&](const sandbox::Result& r, Stage stage) {
    v.limit = r.limit;
    v.limit_stage = stage;
    v.error_class = ClassOfLimit(r.limit);
  };

  // Stage 1: clippy check.
  v.stage_reached = Stage::kCheck;
  sandbox::Request check;
  check.argv = CompilerArgs("clippy-driver");
  check.argv.insert(check.argv.end(),
                    {"--crate-type", sources.check_is_lib ? "lib" : "bin", "--emit=metadata", "-o",
                     "/work/.tmp/sample.rmeta", "--cap-lints", "warn", kSourceFile});
  check.env = BaseEnv();
  check.inputs = {{kSourceFile, sources.check_source, false}};
  check.limits = options_.check_limits;
  ASSIGN_OR_RETURN(sandbox::Result checked, sandbox_->Run(check));
  v.check_ms = Ms(checked.wall_time);
  v.total_ms = v.check_ms;
  std::vector<Diagnostic> diags = Diagnostics(checked.stderr_data);
  v.lints = CountLints(diags);
  for (const Diagnostic& d : diags) {
    if (d.level != "error") continue;
    if (!d.code.empty() && std::find(v.error_codes.begin(), v.error_codes.end(), d.code) == v.error_codes.end()) {
      v.error_codes.push_back(d.code);
    }
    if (v.errors.size() < options_.max_errors_kept) v.errors.push_back(d);
  }
  if (checked.limit != Limit::kNone) {
    fail_on_limit(checked, Stage::kCheck);
    return v;
  }
  if (!checked.Succeeded()) {
    v.error_class = ClassifyCompile(diags);
    if (v.error_class == ErrorClass::kNone) {
      // No JSON error: the compiler crashed or could not start. Keep what it said.
      v.error_class = ErrorClass::kOtherCompile;
      v.errors.push_back(RawFailure(checked));
    }
    return v;
  }
  v.compiled = true;
  if (sources.test_source.empty()) {
    v.passed = true;
    return v;
  }

  // Stage 2a: build the test binary; it leaves through `collect`.
  v.stage_reached = Stage::kBuildTests;
  sandbox::Request build;
  build.argv = CompilerArgs("rustc");
  if (sources.tests_use_harness) build.argv.push_back("--test");
  // /usr/bin/cc is an alternatives link through /etc, which the sandbox does not have.
  build.argv.push_back(absl::StrCat("-Clinker=", linker_));
  build.argv.insert(build.argv.end(), {"--crate-type", "bin", "-C", "opt-level=0", "--cap-lints",
                                       "allow", "-o", absl::StrCat("/work/", kTestBinary), kSourceFile});
  if (sources.tests_use_harness) {
    // --test already implies the crate type.
    auto it = std::find(build.argv.begin(), build.argv.end(), "--crate-type");
    build.argv.erase(it, it + 2);
  }
  build.env = BaseEnv();
  build.inputs = {{kSourceFile, sources.test_source, false}};
  build.collect = {kTestBinary};
  build.limits = options_.build_limits;
  ASSIGN_OR_RETURN(sandbox::Result built, sandbox_->Run(build));
  v.build_ms = Ms(built.wall_time);
  v.total_ms += v.build_ms;
  if (built.limit != Limit::kNone) {
    fail_on_limit(built, Stage::kBuildTests);
    return v;
  }
  auto binary = built.collected.find(kTestBinary);
  if (!built.Succeeded() || binary == built.collected.end()) {
    std::vector<Diagnostic> build_diags = Diagnostics(built.stderr_data);
    for (const Diagnostic& d : build_diags) {
      if (d.level != "error") continue;
      if (!d.code.empty() && std::find(v.error_codes.begin(), v.error_codes.end(), d.code) == v.error_codes.end()) {
        v.error_codes.push_back(d.code);
      }
      if (v.errors.size() < options_.max_errors_kept) v.errors.push_back(d);
    }
    v.error_class = ClassifyCompile(build_diags);
    if (v.error_class == ErrorClass::kNone) {
      v.error_class = ErrorClass::kOtherCompile;
      v.errors.push_back(RawFailure(built));
    }
    return v;
  }

  // Stage 2b: run the tests, one thread, under the run limits.
  v.stage_reached = Stage::kRunTests;
  sandbox::Request run;
  run.argv = {absl::StrCat("/work/", kTestBinary)};
  if (sources.tests_use_harness) run.argv.push_back("--test-threads=1");
  run.env = BaseEnv();
  run.inputs = {{kTestBinary, binary->second, true}};
  run.limits = options_.run_limits;
  ASSIGN_OR_RETURN(sandbox::Result ran, sandbox_->Run(run));
  v.run_ms = Ms(ran.wall_time);
  v.total_ms += v.run_ms;
  v.run_peak_memory_bytes = ran.peak_memory_bytes;
  std::string output = absl::StrCat(ran.stdout_data, ran.stderr_data);
  if (sources.tests_use_harness) {
    std::tie(v.tests_passed, v.tests_failed) = ParseTestCounts(ran.stdout_data);
  } else {
    v.tests_passed = ran.Succeeded() ? 1 : 0;
  }
  if (!ran.Succeeded() && v.tests_failed == 0) v.tests_failed = 1;
  if (ran.limit != Limit::kNone) {
    fail_on_limit(ran, Stage::kRunTests);
  } else if (!ran.Succeeded()) {
    v.error_class = ErrorClass::kTestFailure;
  } else {
    v.passed = true;
  }
  if (!v.passed) {
    output = RedactPaths(output, redactions_);
    if (output.size() > options_.test_output_tail_bytes) {
      output = output.substr(output.size() - options_.test_output_tail_bytes);
    }
    v.test_output = std::move(output);
  }
  return v;
}

std::pair<int, int> ParseTestCounts(const std::string& output) {
  int passed = 0, failed = 0, ok_lines = 0, failed_lines = 0;
  bool summary = false;
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("test result:", 0) == 0) {
      // "test result: FAILED. 3 passed; 1 failed; 0 ignored; ..."
      std::istringstream words(line);
      std::string prev, word;
      while (words >> word) {
        int n;
        if (word.rfind("passed", 0) == 0 && absl::SimpleAtoi(prev, &n)) passed += n;
        if (word.rfind("failed", 0) == 0 && absl::SimpleAtoi(prev, &n)) failed += n;
        prev = word;
      }
      summary = true;
    } else if (line.rfind("test ", 0) == 0) {
      if (absl::EndsWith(line, " ... ok")) ++ok_lines;
      if (line.find(" ... FAILED") != std::string::npos) ++failed_lines;
    }
  }
  if (summary) return {passed, failed};
  return {ok_lines, failed_lines};
}

}  // namespace temper::rusteval
