#include "services/eval-worker/batch.h"

#include "absl/strings/str_cat.h"
#include "libs/rusteval/extraction.h"

namespace temper::evalworker {
namespace {

using nlohmann::json;

absl::Status Bad(std::string_view what) { return absl::InvalidArgumentError(std::string(what)); }

// The "fn name(" of the last function header in `text`, for ExtractionOptions::function_header.
std::string LastFunctionHeader(std::string_view text) {
  size_t fn = text.rfind("fn ");
  if (fn == std::string_view::npos) return "";
  size_t paren = text.find('(', fn);
  if (paren == std::string_view::npos) return "";
  size_t generic = text.find('<', fn);
  if (generic != std::string_view::npos && generic < paren) paren = generic;
  return std::string(text.substr(fn, paren - fn + 1));
}

std::string ExtractFor(const rusteval::Task& task, const std::string& output) {
  rusteval::ExtractionOptions o;
  switch (task.format) {
    case rusteval::TaskFormat::kProgram:
      break;
    case rusteval::TaskFormat::kHumanEvalX:
      o.stop_sequences = task.stop_sequences;
      o.initial_depth = 1;
      o.function_header = LastFunctionHeader(task.declaration);
      break;
    case rusteval::TaskFormat::kMultiplE:
      o.stop_sequences = task.stop_sequences;
      o.initial_depth = 1;
      o.keep_closing_brace = false;
      o.function_header = LastFunctionHeader(task.prompt);
      break;
  }
  return rusteval::ExtractCode(output, o).code;
}

absl::StatusOr<std::string> OptString(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::string();
  if (!it->is_string()) return Bad(absl::StrCat("\"", key, "\" must be a string"));
  return it->get<std::string>();
}

absl::StatusOr<std::optional<int>> OptInt(const json& j, const char* key, int min, int max) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<int>();
  if (!it->is_number_integer()) return Bad(absl::StrCat("\"", key, "\" must be an integer"));
  int64_t v = it->get<int64_t>();
  if (v < min || v > max) return Bad(absl::StrCat("\"", key, "\" must be in [", min, ", ", max, "], got ", v));
  return static_cast<int>(v);
}

absl::StatusOr<bool> OptBool(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean()) return Bad(absl::StrCat("\"", key, "\" must be true or false"));
  return it->get<bool>();
}

}  // namespace

absl::StatusOr<rusteval::Sample> SampleFromJson(const json& j, size_t index, const std::string& default_benchmark,
                                                BenchmarkLibrary& benchmarks, bool extract) {
  if (!j.is_object()) return Bad(absl::StrCat("sample ", index, ": not a JSON object"));
  auto ctx = [&](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat("sample ", index, ": ", s.message()));
  };
  auto field = [&](const char* key) -> absl::StatusOr<std::string> {
    auto v = OptString(j, key);
    if (!v.ok()) return ctx(v.status());
    return v;
  };
  ASSIGN_OR_RETURN(std::string format, field("format"));
  ASSIGN_OR_RETURN(std::string program, field("program"));
  const bool is_program = format == "program" || (format.empty() && j.contains("program"));
  rusteval::Sample sample;
  if (is_program) {
    ASSIGN_OR_RETURN(std::string completion, field("completion"));
    if (!program.empty() && !completion.empty()) {
      return Bad(absl::StrCat("sample ", index, ": give \"program\" or \"completion\", not both"));
    }
    if (program.empty()) program = completion;
    if (!j.contains("program") && !j.contains("completion")) {
      return Bad(absl::StrCat("sample ", index, ": a program sample needs \"program\""));
    }
    auto task = std::make_shared<rusteval::Task>();
    ASSIGN_OR_RETURN(task->id, field("id"));
    if (task->id.empty()) {
      ASSIGN_OR_RETURN(task->id, field("task_id"));
    }
    if (task->id.empty()) task->id = absl::StrCat("program-", index);
    task->format = rusteval::TaskFormat::kProgram;
    ASSIGN_OR_RETURN(task->tests, field("tests"));
    sample.task = std::move(task);
    sample.completion = extract ? ExtractFor(*sample.task, program) : program;
    return sample;
  }
  if (!program.empty()) return Bad(absl::StrCat("sample ", index, ": \"program\" with format \"", format, "\""));
  std::string bench_name = format.empty() ? default_benchmark : format;
  if (bench_name.empty()) {
    return Bad(absl::StrCat("sample ", index, ": no \"format\" and the payload names no \"benchmark\""));
  }
  auto bench = benchmarks.Get(bench_name);
  if (!bench.ok()) return ctx(bench.status());
  ASSIGN_OR_RETURN(std::string task_id, field("task_id"));
  if (task_id.empty()) return Bad(absl::StrCat("sample ", index, ": missing \"task_id\""));
  auto it = (*bench)->by_id.find(task_id);
  if (it == (*bench)->by_id.end()) {
    return Bad(absl::StrCat("sample ", index, ": no task \"", task_id, "\" in ", bench_name));
  }
  if (!j.contains("completion") || !j["completion"].is_string()) {
    return Bad(absl::StrCat("sample ", index, ": \"completion\" must be a string"));
  }
  sample.task = it->second;
  std::string completion = j["completion"].get<std::string>();
  sample.completion = extract ? ExtractFor(*sample.task, completion) : std::move(completion);
  return sample;
}

std::vector<rusteval::Sample> ReferenceSamples(const Benchmark& benchmark, int limit) {
  std::vector<rusteval::Sample> out;
  for (const auto& t : benchmark.tasks) {
    if (limit > 0 && static_cast<int>(out.size()) >= limit) break;
    if (t->canonical_solution.empty()) continue;
    out.push_back({t, t->canonical_solution});
  }
  return out;
}

absl::StatusOr<EvalBatch> ParseEvalPayload(std::string_view payload_json, BenchmarkLibrary& benchmarks,
                                           const PayloadOptions& options) {
  json p = json::parse(payload_json, nullptr, false);
  if (p.is_discarded()) return Bad("payload is not valid JSON");
  if (!p.is_object()) return Bad("payload must be a JSON object");
  EvalBatch batch;
  // The run's eval settings, where the coordinator put them; top-level keys override.
  json eval = json::object();
  if (auto c = p.find("config"); c != p.end() && c->is_object()) {
    if (auto e = c->find("eval"); e != c->end()) {
      if (!e->is_object()) return Bad("\"config.eval\" must be an object");
      eval = *e;
    }
  }
  for (const char* key : {"benchmark", "pass_at_k", "timeout_seconds", "memory_mb", "parallelism"}) {
    if (p.contains(key)) eval[key] = p[key];
  }
  auto in_eval = [&](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat("eval settings: ", s.message()));
  };
  auto bench_name = OptString(eval, "benchmark");
  if (!bench_name.ok()) return in_eval(bench_name.status());
  batch.benchmark = *bench_name == "none" ? "" : *bench_name;
  if (auto it = eval.find("pass_at_k"); it != eval.end() && !it->is_null()) {
    if (!it->is_array() || it->empty()) return Bad("\"pass_at_k\" must be a non-empty array of integers");
    batch.pass_at_k.clear();
    for (const json& k : *it) {
      if (!k.is_number_integer() || k.get<int64_t>() < 1 || k.get<int64_t>() > 1000) {
        return Bad("\"pass_at_k\" entries must be integers in [1, 1000]");
      }
      batch.pass_at_k.push_back(k.get<int>());
    }
  }
  auto timeout = OptInt(eval, "timeout_seconds", 1, 600);
  if (!timeout.ok()) return in_eval(timeout.status());
  batch.timeout_seconds = *timeout;
  auto memory = OptInt(eval, "memory_mb", 64, 65536);
  if (!memory.ok()) return in_eval(memory.status());
  batch.memory_mb = *memory;
  auto parallelism = OptInt(eval, "parallelism", 0, 4096);
  if (!parallelism.ok()) return in_eval(parallelism.status());
  batch.parallelism = parallelism->value_or(0);
  ASSIGN_OR_RETURN(bool extract, OptBool(p, "extract"));

  const Benchmark* bench = nullptr;
  if (!batch.benchmark.empty()) {
    ASSIGN_OR_RETURN(bench, benchmarks.Get(batch.benchmark));
    batch.benchmark_tasks = bench->tasks.size();
  }
  if (auto s = p.find("samples"); s != p.end()) {
    if (!s->is_array()) return Bad("\"samples\" must be an array");
    if (s->empty()) return Bad("\"samples\" is empty");
    batch.samples.reserve(s->size());
    for (size_t i = 0; i < s->size(); ++i) {
      ASSIGN_OR_RETURN(rusteval::Sample sample, SampleFromJson((*s)[i], i, batch.benchmark, benchmarks, extract));
      batch.samples.push_back(std::move(sample));
    }
    return batch;
  }
  // No samples: a run's eval stage, which has no generator output to evaluate yet.
  if (!bench) {
    batch.samples_source = kSourceNone;
    batch.note = "the payload has no samples and names no benchmark: nothing to evaluate";
    return batch;
  }
  batch.samples = ReferenceSamples(*bench, options.reference_limit);
  if (batch.samples.empty()) {
    batch.samples_source = kSourceNone;
    batch.note = absl::StrCat("no model samples in the payload, and ", bench->name,
                              " ships no reference solutions: nothing was evaluated");
    return batch;
  }
  batch.samples_source = kSourceReferences;
  batch.note = absl::StrCat(
      "no model samples in the payload (no generator output for this stage): evaluated ", batch.samples.size(),
      " of ", bench->tasks.size(), " ", bench->name,
      " reference solutions as a smoke check of the sandbox and toolchain; these numbers say nothing about the model");
  return batch;
}

rusteval::EvaluatorOptions EvaluatorOptionsFor(const EvalBatch& batch) {
  rusteval::EvaluatorOptions o;
  if (batch.timeout_seconds) {
    o.run_limits.wall_time = std::chrono::seconds(*batch.timeout_seconds);
    o.run_limits.cpu_time = std::chrono::seconds(*batch.timeout_seconds);
  }
  if (batch.memory_mb) o.run_limits.memory_bytes = static_cast<int64_t>(*batch.memory_mb) << 20;
  return o;
}

}  // namespace temper::evalworker
