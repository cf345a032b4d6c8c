#include "services/eval-worker/eval_worker.h"

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "services/eval-worker/summary.h"
#include "spdlog/spdlog.h"

namespace temper::evalworker {

EvalWorker::EvalWorker(WorkerClient* client, BenchmarkLibrary* benchmarks, EvaluatorFactory factory,
                       EvalWorkerMetrics* metrics, EvalWorkerOptions options)
    : client_(client),
      benchmarks_(benchmarks),
      factory_(std::move(factory)),
      metrics_(metrics),
      options_(std::move(options)),
      keeper_(client, [this](const v1::LeaseRef& lease, bool cancelled) {
        if (lease.job_id() != current_job_.load()) return;
        spdlog::info("job {}: {}; stopping", lease.job_id(),
                     cancelled ? "the run was cancelled" : "the lease was lost");
        job_stopped_ = true;
      }) {}

void EvalWorker::Run(const std::atomic<bool>& drain, const std::atomic<bool>& abort) {
  while (!drain && !abort) {
    auto job = client_->Acquire(options_.acquire_wait);
    if (!job.ok()) {
      spdlog::warn("acquire failed: {}", job.status().ToString());
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      continue;
    }
    if (!*job) continue;
    if ((*job)->kind() != v1::JOB_KIND_EVAL) {
      v1::LeaseRef lease;
      lease.set_job_id((*job)->id());
      lease.set_epoch((*job)->epoch());
      (void)client_->Fail(lease, v1::FAILURE_CLASS_INFRASTRUCTURE, "eval worker leased a job of another kind");
      continue;
    }
    RunJob(**job, abort);
  }
  spdlog::info(abort ? "aborted" : "drained: no job in hand, exiting");
}

namespace {

// Collects verdicts as they finish: tally, metrics, JSONL file. Thread-safe through RunSamples
// (on_verdict is never called concurrently) and its own mutex for the progress reader.
class Progress {
 public:
  Progress(size_t total, EvalWorkerMetrics* metrics) : total_(total), metrics_(metrics) {}

  void Add(size_t index, const rusteval::Verdict& v, std::ofstream* jsonl) {
    if (metrics_) metrics_->Observe(v);
    if (jsonl && jsonl->is_open()) *jsonl << DumpJson(VerdictLine(index, v)) << "\n";
    std::lock_guard lock(mu_);
    tally_.Add(v);
  }

  std::pair<Tally, size_t> Snapshot() const {
    std::lock_guard lock(mu_);
    return {tally_, total_};
  }

 private:
  const size_t total_;
  EvalWorkerMetrics* const metrics_;
  mutable std::mutex mu_;
  Tally tally_;  // GUARDED_BY(mu_)
};

}  // namespace

void EvalWorker::RunJob(const v1::Job& job, const std::atomic<bool>& abort) {
  v1::LeaseRef lease;
  lease.set_job_id(job.id());
  lease.set_epoch(job.epoch());
  job_stopped_ = false;
  current_job_ = job.id();
  keeper_.Add(lease);
  auto count_job = [&](const char* outcome) {
    if (metrics_) metrics_->jobs.Add({{"outcome", outcome}}).Increment();
  };
  auto finish = [&] {
    keeper_.Remove(lease);
    current_job_ = 0;
  };
  auto fail = [&](v1::FailureClass cls, const std::string& error) {
    finish();
    auto retry = client_->Fail(lease, cls, error);
    spdlog::warn("job {}: failed ({}): {}{}", job.id(), v1::FailureClass_Name(cls), error,
                 retry.ok() ? (*retry ? " (will be retried)" : "") : " [FailJob: " + retry.status().ToString() + "]");
    count_job(cls == v1::FAILURE_CLASS_USER_ERROR ? "failed_user" : "failed_infrastructure");
  };

  auto batch = ParseEvalPayload(job.payload_json(), *benchmarks_, options_.payload);
  if (!batch.ok()) {
    fail(batch.status().code() == absl::StatusCode::kInvalidArgument ? v1::FAILURE_CLASS_USER_ERROR
                                                                      : v1::FAILURE_CLASS_INFRASTRUCTURE,
         absl::StrCat("payload: ", batch.status().message()));
    return;
  }
  const int parallelism =
      batch->parallelism > 0 ? std::min(batch->parallelism, options_.parallelism) : options_.parallelism;
  spdlog::info("job {} (run {}, epoch {}): {} samples ({}), {} in parallel", job.id(), job.run_id(), job.epoch(),
               batch->samples.size(), batch->samples_source, parallelism);

  std::string jsonl_path, jsonl_tmp;
  std::ofstream jsonl;
  if (!options_.out_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options_.out_dir, ec);
    jsonl_path = absl::StrCat(options_.out_dir, "/job-", job.id(), ".jsonl");
    jsonl_tmp = absl::StrCat(jsonl_path, ".tmp-", job.epoch());
    jsonl.open(jsonl_tmp, std::ios::trunc);
    if (!jsonl) spdlog::warn("job {}: cannot write {}; verdicts only in the result", job.id(), jsonl_tmp);
  }

  // Progress thread: counts and fraction every progress_interval; notices cancellation too.
  Progress progress(batch->samples.size(), metrics_);
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  const auto started = std::chrono::steady_clock::now();
  std::thread reporter([&] {
    std::unique_lock lock(mu);
    while (!cv.wait_for(lock, options_.progress_interval, [&] { return done; })) {
      lock.unlock();
      auto [tally, total] = progress.Snapshot();
      auto metrics = tally.AsMetrics();
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      metrics["samples_done"] = static_cast<double>(tally.samples);
      metrics["samples_total"] = static_cast<double>(total);
      metrics["samples_per_second"] = secs > 0 ? tally.samples / secs : 0;
      double fraction = total ? static_cast<double>(tally.samples) / total : 1.0;
      auto cancel = client_->ReportProgress(
          lease, static_cast<int64_t>(tally.samples), metrics,
          absl::StrCat(tally.samples, "/", total, " samples, ", tally.outcome("passed"), " passed"), fraction);
      if (cancel.ok() && *cancel) {
        spdlog::info("job {}: cancel requested", job.id());
        job_stopped_ = true;
      } else if (!cancel.ok() && cancel.status().code() == absl::StatusCode::kFailedPrecondition) {
        job_stopped_ = true;  // the lease is someone else's now
      }
      lock.lock();
    }
  });
  // Stop when the coordinator or the process says so.
  std::thread watcher([&] {
    std::unique_lock lock(mu);
    while (!cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return done; })) {
      if (job_stopped_ || abort) stop = true;
    }
  });

  EvaluateFn evaluate = factory_(*batch);
  RunOptions ro;
  ro.parallelism = parallelism;
  ro.stop = &stop;
  ro.on_verdict = [&](size_t i, const rusteval::Verdict& v) { progress.Add(i, v, &jsonl); };
  EvaluateFn counted = [&](const rusteval::Sample& s) {
    if (metrics_) metrics_->samples_in_flight.Increment();
    auto v = evaluate(s);
    if (metrics_) metrics_->samples_in_flight.Decrement();
    return v;
  };
  RunOutcome outcome = RunSamples(batch->samples, counted, ro);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  {
    std::lock_guard lock(mu);
    done = true;
  }
  cv.notify_all();
  reporter.join();
  watcher.join();
  if (jsonl.is_open()) jsonl.close();

  if (job_stopped_ || abort || outcome.stopped) {
    finish();
    if (!jsonl_tmp.empty()) std::filesystem::remove(jsonl_tmp);
    spdlog::info("job {}: stopped after {}/{} samples; not reported", job.id(), outcome.done, batch->samples.size());
    count_job("dropped");
    return;
  }
  if (!outcome.infrastructure.ok()) {
    if (!jsonl_tmp.empty()) std::filesystem::remove(jsonl_tmp);
    fail(v1::FAILURE_CLASS_INFRASTRUCTURE, absl::StrCat("sandbox: ", outcome.infrastructure.message()));
    return;
  }
  std::vector<rusteval::Verdict> verdicts;
  verdicts.reserve(outcome.verdicts.size());
  for (auto& v : outcome.verdicts) verdicts.push_back(std::move(*v));
  ResultContext ctx;
  ctx.worker_id = client_->worker_id();
  ctx.parallelism = parallelism;
  ctx.seconds = seconds;
  ctx.max_bytes = options_.max_result_bytes;
  if (!jsonl_tmp.empty()) {
    std::error_code ec;
    std::filesystem::rename(jsonl_tmp, jsonl_path, ec);
    if (!ec) ctx.verdicts_file = jsonl_path;
  }
  std::string result = DumpJson(SummariseResult(*batch, verdicts, ctx));
  finish();
  absl::Status s = client_->Complete(lease, result);
  if (!s.ok()) {
    spdlog::warn("job {}: CompleteJob refused: {}", job.id(), s.ToString());
    count_job("dropped");
    return;
  }
  Tally t;
  for (const auto& v : verdicts) t.Add(v);
  spdlog::info("job {}: completed: {} samples in {:.1f} s, {} passed, {} compile errors, {} test failures, {} timeouts",
               job.id(), verdicts.size(), seconds, t.outcome("passed"), t.outcome("compile_error"),
               t.outcome("test_failed"), t.outcome("timeout"));
  count_job("completed");
}

}  // namespace temper::evalworker
