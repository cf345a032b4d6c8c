#include "services/eval-worker/runner.h"

#include <algorithm>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"

namespace temper::evalworker {

RunOutcome RunSamples(const std::vector<rusteval::Sample>& samples, const EvaluateFn& evaluate,
                      const RunOptions& options) {
  RunOutcome out;
  out.verdicts.resize(samples.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  auto stop_requested = [&] { return failed.load() || (options.stop && options.stop->load()); };
  auto work = [&] {
    while (!stop_requested()) {
      size_t i = next.fetch_add(1);
      if (i >= samples.size()) return;
      absl::StatusOr<rusteval::Verdict> v = evaluate(samples[i]);
      std::lock_guard lock(mu);
      if (!v.ok()) {
        if (out.infrastructure.ok()) {
          out.infrastructure = absl::Status(
              v.status().code(), absl::StrCat("sample ", i, " (", samples[i].task ? samples[i].task->id : "", "): ",
                                              v.status().message()));
        }
        failed = true;
        return;
      }
      out.verdicts[i] = std::move(*v);
      ++out.done;
      if (options.on_verdict) options.on_verdict(i, *out.verdicts[i]);
    }
  };
  int threads = std::clamp<int>(options.parallelism, 1, std::max<int>(1, static_cast<int>(samples.size())));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  out.stopped = out.done < samples.size() && out.infrastructure.ok();
  return out;
}

}  // namespace temper::evalworker
