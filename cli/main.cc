// temper: the command-line client of the coordinator. Parses flags and hands each command to
// cli/commands.h with a gRPC client and the process's terminal.
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "CLI/CLI.hpp"
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/eval_command.h"

namespace {

size_t TerminalWidth() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 100;
}

}  // namespace

int main(int argc, char** argv) {
  namespace cli = temper::cli;
  const char* env = std::getenv("TEMPER_COORDINATOR");
  std::string coordinator = env && *env ? env : "127.0.0.1:7070";
  double timeout_s = 15;
  bool json = false;

  CLI::App app{"temper: submit, list, watch and cancel fine-tuning runs on a temper coordinator"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags may follow the subcommand: `temper runs list --json`
  app.add_option("--coordinator", coordinator, "coordinator address host:port (env TEMPER_COORDINATOR)")
      ->capture_default_str();
  app.add_option("--timeout", timeout_s, "deadline of each request, in seconds")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_flag("--json", json, "print one JSON document (proto field names) instead of a table");

  // submit
  std::string file;
  cli::SubmitOptions submit;
  auto* submit_cmd = app.add_subcommand("submit", "validate a run config (YAML) and submit it; a sweep submits one run per point");
  submit_cmd->add_option("file", file, "run config YAML")->required();
  submit_cmd->add_option("--idempotency-key", submit.idempotency_key,
                         "resubmissions with the same key return the same run(s) (default: sha256 of the file)");
  submit_cmd->add_flag("--watch", submit.watch, "follow the run(s) to the end; exit 1 unless all succeeded");

  // runs list | show | cancel
  auto* runs_cmd = app.add_subcommand("runs", "list, show or cancel runs");
  runs_cmd->require_subcommand(1);
  cli::ListRunsOptions list;
  auto* list_cmd = runs_cmd->add_subcommand("list", "list runs, newest first");
  list_cmd->add_option("--state", list.states, "only runs in this state (repeatable): pending, running, succeeded, failed, cancelled");
  list_cmd->add_option("--name-prefix", list.name_prefix, "only runs whose name starts with this");
  list_cmd->add_option("--limit", list.limit, "runs per page, 1..1000 (default 50)");
  list_cmd->add_option("--page-token", list.page_token, "continue from a previous page's next_page_token");
  list_cmd->add_flag("--all", list.all, "follow page tokens to the last page");
  int64_t run_id = 0;
  auto* show_cmd = runs_cmd->add_subcommand("show", "show one run");
  show_cmd->add_option("id", run_id, "run id")->required()->check(CLI::PositiveNumber);
  std::string reason;
  auto* cancel_cmd = runs_cmd->add_subcommand("cancel", "cancel a run: pending jobs stop now, running ones at their next heartbeat");
  cancel_cmd->add_option("id", run_id, "run id")->required()->check(CLI::PositiveNumber);
  cancel_cmd->add_option("--reason", reason, "recorded with the cancellation");

  // watch
  auto* watch_cmd = app.add_subcommand("watch", "follow a run's events to its end; exit 0 when it succeeded");
  watch_cmd->add_option("run", run_id, "run id")->required()->check(CLI::PositiveNumber);

  // jobs, workers
  cli::ListJobsOptions jobs;
  auto* jobs_cmd = app.add_subcommand("jobs", "list jobs, of one run or all");
  jobs_cmd->add_option("--run", jobs.run_id, "only this run's jobs")->check(CLI::PositiveNumber);
  jobs_cmd->add_option("--state", jobs.states, "only jobs in this state (repeatable): pending, leased, running, succeeded, failed, cancelled");
  jobs_cmd->add_option("--limit", jobs.limit, "most jobs to list, 1..10000 (default 100)");
  auto* workers_cmd = app.add_subcommand("workers", "list workers");

  // checkpoints list | lineage
  auto* ckpt_cmd = app.add_subcommand("checkpoints", "list a run's checkpoints or a checkpoint's lineage");
  ckpt_cmd->require_subcommand(1);
  auto* ckpt_list_cmd = ckpt_cmd->add_subcommand("list", "a run's checkpoints");
  ckpt_list_cmd->add_option("run", run_id, "run id")->required()->check(CLI::PositiveNumber);
  int64_t checkpoint_id = 0;
  auto* lineage_cmd = ckpt_cmd->add_subcommand("lineage", "a checkpoint and its ancestors, nearest first");
  lineage_cmd->add_option("id", checkpoint_id, "checkpoint id")->required()->check(CLI::PositiveNumber);

  // eval (local, in-process sandboxes)
  cli::EvalOptions eval;
  auto* eval_cmd = app.add_subcommand("eval", "evaluate Rust samples locally in sandboxes: a JSONL file, or a benchmark's reference solutions");
  eval_cmd->add_option("samples", eval.samples_file, "JSON lines: {\"task_id\",\"completion\"} or {\"program\"}");
  eval_cmd->add_option("--benchmark", eval.benchmark, "humaneval-x or multipl-e")->capture_default_str();
  eval_cmd->add_flag("--references", eval.references, "evaluate the benchmark's reference solutions");
  eval_cmd->add_option("--limit", eval.limit, "at most N samples")->check(CLI::NonNegativeNumber);
  eval_cmd->add_option("--parallelism", eval.parallelism, "sandboxes at once (default: cores)")->check(CLI::NonNegativeNumber);
  eval_cmd->add_option("--pass-at-k", eval.pass_at_k, "k values for pass@k (repeatable)")->check(CLI::PositiveNumber);
  eval_cmd->add_flag("--extract", eval.extract, "completions are raw model output: extract the code first");
  eval_cmd->add_option("--timeout-seconds", eval.timeout_seconds, "test-run limit per sample")->check(CLI::PositiveNumber);
  eval_cmd->add_option("--memory-mb", eval.memory_mb, "test-run memory limit per sample")->check(CLI::PositiveNumber);
  eval_cmd->add_option("--out", eval.out, "write every verdict here as JSON lines");
  eval_cmd->add_option("--benchmark-dir", eval.benchmark_dir, "benchmark files (default: $TEMPER_BENCHMARK_DIR or the source tree's fixtures)");
  eval_cmd->add_option("--toolchain", eval.toolchain, "Rust toolchain directory");
  eval_cmd->add_option("--crate-cache", eval.crate_cache, "prebuilt crate cache root");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return cli::kExitUsage;
  }

  if (*eval_cmd) {
    eval.json = json;
    cli::Io eval_io{std::cout, std::cerr};
    eval_io.tty = isatty(STDERR_FILENO) == 1;
    return cli::RunEval(eval, eval_io);
  }

  auto client = cli::NewGrpcCoordinatorClient(
      coordinator, std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
  cli::Io io{std::cout, std::cerr};
  io.tty = isatty(STDOUT_FILENO) == 1;
  if (io.tty) io.width = TerminalWidth();

  if (*submit_cmd) {
    submit.json = json;
    return cli::SubmitFile(*client, file, submit, io);
  }
  if (*list_cmd) {
    list.json = json;
    return cli::ListRuns(*client, list, io);
  }
  if (*show_cmd) return cli::ShowRun(*client, run_id, json, io);
  if (*cancel_cmd) return cli::CancelRun(*client, run_id, reason, json, io);
  if (*watch_cmd) {
    cli::WatchOptions w;
    w.json = json;
    return cli::WatchRun(*client, run_id, w, io);
  }
  if (*jobs_cmd) {
    jobs.json = json;
    return cli::ListJobs(*client, jobs, io);
  }
  if (*workers_cmd) return cli::ListWorkers(*client, json, io);
  if (*ckpt_list_cmd) return cli::ListCheckpoints(*client, run_id, json, io);
  if (*lineage_cmd) return cli::CheckpointLineage(*client, checkpoint_id, json, io);
  return cli::kExitUsage;
}
