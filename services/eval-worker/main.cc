// temper-eval-worker: leases eval jobs from the coordinator and evaluates their samples in
// bubblewrap sandboxes (libs/rusteval). SIGTERM/SIGINT drain (finish the job in hand, then exit
// 0); a second signal aborts the job in hand unreported. See docs/eval-worker.md.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "libs/common/log.h"
#include "libs/metrics/metrics.h"
#include "libs/rpc/worker_client.h"
#include "libs/rusteval/evaluator.h"
#include "libs/sandbox/bwrap_sandbox.h"
#include "services/eval-worker/eval_worker.h"

namespace {

namespace ev = temper::evalworker;

std::atomic<bool> g_drain{false};
std::atomic<bool> g_abort{false};

// Waits for SIGTERM/SIGINT (blocked in every thread) and turns them into drain, then abort.
void SignalLoop(sigset_t set) {
  while (true) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) return;
    if (!g_drain.exchange(true)) {
      spdlog::info("signal {}: draining (finishing the job in hand); signal again to abort it", sig);
    } else {
      spdlog::warn("signal {}: aborting the job in hand", sig);
      g_abort = true;
      return;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string coordinator = "127.0.0.1:7070";
  std::string name = "eval";
  int parallelism = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string out_dir;
  std::string metrics_listen = "0.0.0.0:9102";
  std::string toolchain_dir;
  std::string crate_cache;
  std::string benchmark_dir = ev::DefaultBenchmarkDir();
  int reference_limit = 0;
  int progress_ms = 2000;
  int wait_ms = 2000;

  CLI::App app{"temper eval worker: evaluates Rust samples in sandboxes for a temper coordinator"};
  app.add_option("--coordinator", coordinator, "coordinator address host:port")->capture_default_str();
  app.add_option("--name", name, "worker id prefix (the id is <name>-<host>-<pid>)")->capture_default_str();
  app.add_option("--parallelism", parallelism, "sandboxes at once (default: cores)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--out-dir", out_dir, "write every job's full verdicts to <dir>/job-<id>.jsonl");
  app.add_option("--metrics-listen", metrics_listen, "serve /metrics here; '' disables")->capture_default_str();
  app.add_option("--toolchain", toolchain_dir, "Rust toolchain directory (default: $TEMPER_RUST_TOOLCHAIN, rustup stable)");
  app.add_option("--crate-cache", crate_cache, "prebuilt crate cache root (default: $TEMPER_CRATE_CACHE, ~/.cache/temper/crates)");
  app.add_option("--benchmark-dir", benchmark_dir, "directory with humaneval-x-rust.jsonl.gz and multipl-e-humaneval-rs.json")
      ->capture_default_str();
  app.add_option("--reference-limit", reference_limit,
                 "for a run's eval stage without samples, evaluate only the first N reference solutions (0: all)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--progress-interval-ms", progress_ms, "ReportProgress period")->check(CLI::Range(100, 600000));
  app.add_option("--wait-ms", wait_ms, "AcquireJob long-poll")->check(CLI::Range(100, 60000));
  CLI11_PARSE(app, argc, argv);
  temper::InitLogging("eval-worker");

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before any thread starts: all inherit it
  std::thread(SignalLoop, set).detach();

  auto toolchain = temper::rusteval::FindToolchain(toolchain_dir);
  if (!toolchain.ok()) {
    spdlog::critical("no Rust toolchain: {}", toolchain.status().ToString());
    return 1;
  }
  // Cargo resolves a relative CARGO_HOME against its project directory: pass an absolute root.
  if (!crate_cache.empty()) crate_cache = std::filesystem::absolute(crate_cache).string();
  auto started = std::chrono::steady_clock::now();
  auto crates = temper::rusteval::EnsureCrates(*toolchain, crate_cache);
  if (!crates.ok()) {
    spdlog::critical("building the dependency crates failed: {}", crates.status().ToString());
    return 1;
  }
  spdlog::info("toolchain {}; crates ready in {} ms at {}", toolchain->dir,
               std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count(),
               crates->dir);
  auto sandbox = temper::sandbox::BwrapSandbox::Create(temper::rusteval::EvalSandboxConfig(*toolchain, *crates));
  if (!sandbox.ok()) {
    spdlog::critical("cannot create the sandbox: {}", sandbox.status().ToString());
    return 1;
  }

  auto registry = std::make_shared<prometheus::Registry>();
  ev::EvalWorkerMetrics metrics(*registry);
  std::unique_ptr<prometheus::Exposer> exposer;
  if (!metrics_listen.empty()) {
    auto e = temper::ServeMetrics(metrics_listen, registry);
    if (!e.ok()) {
      spdlog::critical("metrics: {}", e.status().ToString());
      return 1;
    }
    exposer = std::move(*e);
  }

  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  temper::v1::Worker identity;
  identity.set_id(name + "-" + host + "-" + std::to_string(getpid()));
  identity.set_hostname(host);
  identity.add_kinds(temper::v1::JOB_KIND_EVAL);
  identity.set_cpu_cores(parallelism);
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  auto channel = grpc::CreateCustomChannel(coordinator, grpc::InsecureChannelCredentials(), args);
  temper::WorkerClient client(channel, identity);
  if (auto s = client.Register(); !s.ok()) {
    spdlog::critical("registering with {} failed: {}", coordinator, s.ToString());
    return 1;
  }
  spdlog::info("registered as {} with {} ({} sandboxes at once)", client.worker_id(), coordinator, parallelism);

  ev::BenchmarkLibrary benchmarks(benchmark_dir);
  temper::sandbox::Sandbox* sb = sandbox->get();
  ev::EvaluatorFactory factory = [&](const ev::EvalBatch& batch) -> ev::EvaluateFn {
    auto evaluator = std::make_shared<temper::rusteval::Evaluator>(sb, *toolchain, *crates, ev::EvaluatorOptionsFor(batch));
    return [evaluator](const temper::rusteval::Sample& s) { return evaluator->Evaluate(s); };
  };
  ev::EvalWorkerOptions options;
  options.parallelism = parallelism;
  options.out_dir = out_dir;
  options.progress_interval = std::chrono::milliseconds(progress_ms);
  options.acquire_wait = std::chrono::milliseconds(wait_ms);
  options.payload.reference_limit = reference_limit;
  ev::EvalWorker worker(&client, &benchmarks, factory, &metrics, options);
  worker.Run(g_drain, g_abort);
  return 0;
}
