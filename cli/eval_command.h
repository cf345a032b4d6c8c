// `temper eval`: evaluates Rust samples locally, in-process, with the real sandbox — a JSONL file of
// samples against a benchmark, or a benchmark's reference solutions — and prints per-class counts,
// pass@k and samples/s. Shares payload parsing, the parallel runner and summaries with the eval
// worker (services/eval-worker). Not thread-safe; one call per process.
#pragma once

#include <string>
#include <vector>

#include "cli/commands.h"
#include "services/eval-worker/benchmarks.h"
#include "services/eval-worker/runner.h"

namespace temper::cli {

struct EvalOptions {
  std::string samples_file;            // JSON lines: {"task_id","completion"} or {"program"}; "" → --references
  std::string benchmark = "humaneval-x";
  bool references = false;             // evaluate the benchmark's reference solutions
  int limit = 0;                       // at most this many samples (0: all)
  int parallelism = 0;                 // sandboxes at once; 0: cores
  std::vector<int> pass_at_k = {1};
  bool extract = false;                // completions are raw model output
  int timeout_seconds = 0;             // per test run; 0: the evaluator's default
  int memory_mb = 0;
  std::string out;                     // full verdicts as JSON lines
  std::string benchmark_dir;           // "" → evalworker::DefaultBenchmarkDir()
  std::string toolchain;
  std::string crate_cache;
  bool json = false;                   // print the summary JSON instead of a table
};

// Sets up the toolchain, crates and bubblewrap sandbox, then EvaluateSamples. Exit 0 when every
// sample got a verdict (whatever it was), 1 on an infrastructure failure, 2 on bad arguments.
int RunEval(const EvalOptions& options, Io& io);

// The part after set-up, on any evaluator (tests pass a fake).
int EvaluateSamples(const EvalOptions& options, evalworker::BenchmarkLibrary& benchmarks,
                    const evalworker::EvaluateFn& evaluate, Io& io);

}  // namespace temper::cli
