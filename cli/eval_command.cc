#include "cli/eval_command.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "libs/rusteval/evaluator.h"
#include "libs/sandbox/bwrap_sandbox.h"
#include "services/eval-worker/batch.h"
#include "services/eval-worker/summary.h"

namespace temper::cli {
namespace ev = evalworker;
using nlohmann::json;

namespace {

int Parallelism(const EvalOptions& o) {
  return o.parallelism > 0 ? o.parallelism : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace

int EvaluateSamples(const EvalOptions& o, ev::BenchmarkLibrary& benchmarks, const ev::EvaluateFn& evaluate, Io& io) {
  ev::EvalBatch batch;
  batch.benchmark = o.benchmark;
  batch.pass_at_k = o.pass_at_k;
  if (auto b = benchmarks.Get(o.benchmark); b.ok()) {
    batch.benchmark_tasks = (*b)->tasks.size();
  } else if (!o.samples_file.empty() || o.references) {
    io.err << "temper eval: " << b.status().message() << "\n";
    return b.status().code() == absl::StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
  }
  if (!o.samples_file.empty()) {
    std::ifstream in(o.samples_file);
    if (!in) {
      io.err << "temper eval: cannot read " << o.samples_file << "\n";
      return kExitUsage;
    }
    std::string line;
    for (size_t n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      json j = json::parse(line, nullptr, false);
      auto s = ev::SampleFromJson(j, batch.samples.size(), o.benchmark, benchmarks, o.extract);
      if (j.is_discarded() || !s.ok()) {
        io.err << o.samples_file << ":" << n << ": " << (j.is_discarded() ? "not JSON" : s.status().message()) << "\n";
        return kExitUsage;
      }
      batch.samples.push_back(std::move(*s));
      if (o.limit > 0 && static_cast<int>(batch.samples.size()) >= o.limit) break;
    }
  } else if (o.references) {
    auto b = benchmarks.Get(o.benchmark);
    batch.samples = ev::ReferenceSamples(**b, o.limit);
    batch.samples_source = ev::kSourceReferences;
    if (batch.samples.empty()) {
      io.err << "temper eval: " << o.benchmark << " has no reference solutions\n";
      return kExitUsage;
    }
  } else {
    io.err << "temper eval: give a JSONL file of samples, or --references\n";
    return kExitUsage;
  }

  std::ofstream out;
  if (!o.out.empty()) {
    out.open(o.out, std::ios::trunc);
    if (!out) {
      io.err << "temper eval: cannot write " << o.out << "\n";
      return kExitUsage;
    }
  }
  const int parallelism = Parallelism(o);
  std::vector<std::optional<rusteval::Verdict>> verdicts(batch.samples.size());
  ev::RunOptions ro;
  ro.parallelism = parallelism;
  size_t done = 0;
  ro.on_verdict = [&](size_t i, const rusteval::Verdict& v) {
    if (out.is_open()) out << ev::DumpJson(ev::VerdictLine(i, v)) << "\n";
    if (io.tty && !o.json) io.err << "\r" << ++done << "/" << batch.samples.size() << " evaluated" << std::flush;
  };
  const auto start = std::chrono::steady_clock::now();
  ev::RunOutcome outcome = ev::RunSamples(batch.samples, evaluate, ro);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (io.tty && !o.json) io.err << "\n";
  if (!outcome.infrastructure.ok()) {
    io.err << "temper eval: the sandbox failed: " << outcome.infrastructure.message() << "\n";
    return kExitFailure;
  }
  std::vector<rusteval::Verdict> vs;
  for (auto& v : outcome.verdicts) vs.push_back(std::move(*v));
  ev::ResultContext ctx;
  ctx.parallelism = parallelism;
  ctx.seconds = seconds;
  ctx.max_bytes = 0;  // no verdicts in the summary: they are in --out
  json r = ev::SummariseResult(batch, vs, ctx);
  for (const char* k : {"verdicts", "verdicts_included", "verdicts_abbreviated", "verdicts_truncated"}) r.erase(k);
  if (!o.out.empty()) r["verdicts_file"] = o.out;
  if (o.json) {
    io.out << ev::DumpJson(r) << "\n";
    return kExitOk;
  }
  io.out << absl::StrFormat("%d samples (%s, %s), %d tasks, %.1f s, %.2f samples/s, %d at once\n", vs.size(),
                            batch.samples_source == ev::kSourceReferences ? "reference solutions" : o.samples_file,
                            o.benchmark, r["tasks"].get<int>(), seconds, seconds > 0 ? vs.size() / seconds : 0.0,
                            parallelism);
  io.out << absl::StrFormat("%-16s %8s %7s\n", "OUTCOME", "SAMPLES", "SHARE");
  for (auto name : ev::OutcomeNames()) {
    int64_t c = r["counts"][std::string(name)].get<int64_t>();
    if (c == 0 && name == "other") continue;
    io.out << absl::StrFormat("%-16s %8d %6.1f%%\n", std::string(name), c, vs.empty() ? 0.0 : 100.0 * c / vs.size());
  }
  if (!r["error_classes"].empty()) {
    io.out << "error classes:";
    for (const auto& [k, v] : r["error_classes"].items()) io.out << " " << k << "=" << v.get<int64_t>();
    io.out << "\n";
  }
  if (!r["limit_kills"].empty()) {
    io.out << "limit kills:";
    for (const auto& [k, v] : r["limit_kills"].items()) io.out << " " << k << "=" << v.get<int64_t>();
    io.out << "\n";
  }
  for (int k : o.pass_at_k) {
    auto key = absl::StrCat(k);
    if (r["pass_at_k"].contains(key)) {
      io.out << absl::StrFormat("pass@%d: %.4f\n", k, r["pass_at_k"][key].get<double>());
    } else {
      io.out << absl::StrFormat("pass@%d: n/a (no task has %d samples)\n", k, k);
    }
  }
  if (!o.out.empty()) io.out << "verdicts: " << o.out << "\n";
  return kExitOk;
}

int RunEval(const EvalOptions& o, Io& io) {
  if (o.samples_file.empty() && !o.references) {
    io.err << "temper eval: give a JSONL file of samples, or --references\n";
    return kExitUsage;
  }
  auto toolchain = rusteval::FindToolchain(o.toolchain);
  if (!toolchain.ok()) {
    io.err << "temper eval: " << toolchain.status().message() << "\n";
    return kExitFailure;
  }
  std::string cache = o.crate_cache.empty() ? "" : std::filesystem::absolute(o.crate_cache).string();
  auto crates = rusteval::EnsureCrates(*toolchain, cache);
  if (!crates.ok()) {
    io.err << "temper eval: building the dependency crates: " << crates.status().message() << "\n";
    return kExitFailure;
  }
  auto sandbox = sandbox::BwrapSandbox::Create(rusteval::EvalSandboxConfig(*toolchain, *crates));
  if (!sandbox.ok()) {
    io.err << "temper eval: cannot create the sandbox: " << sandbox.status().message() << "\n";
    return kExitFailure;
  }
  ev::EvalBatch limits;
  if (o.timeout_seconds > 0) limits.timeout_seconds = o.timeout_seconds;
  if (o.memory_mb > 0) limits.memory_mb = o.memory_mb;
  rusteval::Evaluator evaluator(sandbox->get(), *toolchain, *crates, ev::EvaluatorOptionsFor(limits));
  ev::BenchmarkLibrary benchmarks(o.benchmark_dir.empty() ? ev::DefaultBenchmarkDir() : o.benchmark_dir);
  return EvaluateSamples(o, benchmarks, [&](const rusteval::Sample& s) { return evaluator.Evaluate(s); }, io);
}

}  // namespace temper::cli
