#include "services/eval-worker/benchmarks.h"

#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"

#ifndef TEMPER_SOURCE_ROOT
#define TEMPER_SOURCE_ROOT "."
#endif

namespace temper::evalworker {

std::string DefaultBenchmarkDir() {
  const char* env = std::getenv("TEMPER_BENCHMARK_DIR");
  if (env && *env) return env;
  return std::string(TEMPER_SOURCE_ROOT) + "/tests/fixtures/rusteval";
}

BenchmarkLibrary::BenchmarkLibrary(std::string dir) : dir_(std::move(dir)) {}

namespace {

// The first of `names` present in `dir`, or "".
std::string FirstExisting(const std::string& dir, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    std::string p = dir + "/" + n;
    if (std::filesystem::exists(p)) return p;
  }
  return "";
}

}  // namespace

absl::StatusOr<const Benchmark*> BenchmarkLibrary::Get(std::string_view name_view) {
  const std::string name(name_view);
  if (name != kHumanEvalX && name != kMultiplE) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown benchmark \"", name, "\"; expected ", kHumanEvalX, " or ", kMultiplE));
  }
  std::lock_guard lock(mu_);
  if (auto it = loaded_.find(name); it != loaded_.end()) return it->second.get();
  auto b = std::make_unique<Benchmark>();
  b->name = name;
  absl::StatusOr<std::vector<std::shared_ptr<const rusteval::Task>>> tasks;
  if (name == kHumanEvalX) {
    std::string path = FirstExisting(dir_, {"humaneval-x-rust.jsonl.gz", "humaneval-x-rust.jsonl"});
    if (path.empty()) return absl::FailedPreconditionError(absl::StrCat("no humaneval-x-rust.jsonl[.gz] in ", dir_));
    b->format = rusteval::TaskFormat::kHumanEvalX;
    tasks = rusteval::LoadHumanEvalX(path);
  } else {
    std::string path = FirstExisting(dir_, {"multipl-e-humaneval-rs.json", "multipl-e-humaneval-rs.jsonl"});
    if (path.empty()) return absl::FailedPreconditionError(absl::StrCat("no multipl-e-humaneval-rs.json in ", dir_));
    b->format = rusteval::TaskFormat::kMultiplE;
    tasks = rusteval::LoadMultiplE(path);
  }
  if (!tasks.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("loading ", name, ": ", tasks.status().message()));
  }
  b->tasks = std::move(*tasks);
  for (const auto& t : b->tasks) b->by_id.emplace(t->id, t);
  const Benchmark* out = b.get();
  loaded_.emplace(name, std::move(b));
  return out;
}

}  // namespace temper::evalworker
