// BenchmarkLibrary: the benchmark task sets (HumanEval-X Rust, MultiPL-E HumanEval-rs) that a
// sample's task_id is looked up in. Each file is loaded on first use and kept. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "libs/common/status.h"
#include "libs/rusteval/task.h"

namespace temper::evalworker {

inline constexpr char kHumanEvalX[] = "humaneval-x";
inline constexpr char kMultiplE[] = "multipl-e";

struct Benchmark {
  std::string name;
  rusteval::TaskFormat format = rusteval::TaskFormat::kHumanEvalX;
  std::vector<std::shared_ptr<const rusteval::Task>> tasks;  // in file order
  std::map<std::string, std::shared_ptr<const rusteval::Task>, std::less<>> by_id;
};

// `$TEMPER_BENCHMARK_DIR` when set, else the fixtures of the source tree this was built from
// (tests/fixtures/rusteval).
std::string DefaultBenchmarkDir();

class BenchmarkLibrary {
 public:
  // `dir` holds humaneval-x-rust.jsonl[.gz] and multipl-e-humaneval-rs.json[l].
  explicit BenchmarkLibrary(std::string dir);

  // The named benchmark, loaded on first use; the pointer stays valid for the library's life.
  // InvalidArgument for an unknown name (the caller's mistake); FailedPrecondition when its file is
  // missing or unreadable here (this machine's set-up).
  absl::StatusOr<const Benchmark*> Get(std::string_view name);

  const std::string& dir() const { return dir_; }

 private:
  const std::string dir_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Benchmark>, std::less<>> loaded_;  // GUARDED_BY(mu_)
};

}  // namespace temper::evalworker
