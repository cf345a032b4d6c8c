// Evaluator: runs one sample through the stages and returns its Verdict.
//
//   1. check: `clippy-driver --edition 2021 --emit=metadata --error-format=json --cap-lints warn`
//      on the model's code: compile errors and lints in one pass.
//   2. only if (1) passed and the task has tests: build the tests (`rustc --test`, or a plain
//      binary whose `main` asserts, as MultiPL-E writes them), then run them with
//      `--test-threads=1`.
// Each step is its own sandbox run with its own limits; the test binary leaves the build step's
// tmpfs through Request::collect and enters the run step's as an input file.
// Thread-safe: Evaluate may be called from many threads at once (given a thread-safe Sandbox).
#pragma once

#include <map>
#include <string>

#include "libs/common/status.h"
#include "libs/rusteval/crate_cache.h"
#include "libs/rusteval/task.h"
#include "libs/rusteval/verdict.h"
#include "libs/sandbox/bwrap_sandbox.h"
#include "libs/sandbox/sandbox.h"

namespace temper::rusteval {

// Where the toolchain and the prebuilt crates appear inside every sandbox.
inline constexpr char kToolchainMount[] = "/opt/rust";
inline constexpr char kCratesMount[] = "/opt/crates";

// The sandbox configuration the Evaluator's commands expect: toolchain and crates read-only at
// kToolchainMount and kCratesMount.
sandbox::BwrapConfig EvalSandboxConfig(const Toolchain& toolchain, const CrateSet& crates);

struct EvaluatorOptions {
  sandbox::Limits check_limits;  // stage 1
  sandbox::Limits build_limits;  // stage 2, building the test binary
  sandbox::Limits run_limits;    // stage 2, running it
  size_t max_errors_kept = 5;
  size_t test_output_tail_bytes = 4096;
  bool syntax_metrics = true;
  // The C linker rustc drives, resolved on the host (it must live under /usr to be visible).
  std::string linker = "/usr/bin/cc";
  EvaluatorOptions();
};

class Evaluator {
 public:
  // `sandbox` is not owned and must outlive the Evaluator; `crates` names the externs and the
  // host paths redacted from diagnostics.
  Evaluator(sandbox::Sandbox* sandbox, Toolchain toolchain, CrateSet crates,
            EvaluatorOptions options = EvaluatorOptions());

  // The verdict for `sample`, whatever the code does. An error status only when the sandbox could
  // not run (infrastructure), never for the sample's own failures.
  absl::StatusOr<Verdict> Evaluate(const Sample& sample) const;

 private:
  std::vector<std::string> CompilerArgs(const std::string& compiler) const;
  std::vector<Diagnostic> Diagnostics(const std::string& stderr_json) const;
  Diagnostic RawFailure(const sandbox::Result& r) const;

  sandbox::Sandbox* const sandbox_;
  const Toolchain toolchain_;
  const CrateSet crates_;
  const EvaluatorOptions options_;
  std::map<std::string, std::string> redactions_;
  std::string linker_;
};

// Test-harness output → (passed, failed). Reads libtest's "test result:" summary, else counts the
// per-test lines (the harness died mid-run).
std::pair<int, int> ParseTestCounts(const std::string& output);

}  // namespace temper::rusteval
