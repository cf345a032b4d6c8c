// Tasks and samples: what a model was asked (in one of three formats) and what it answered, and
// how the two are assembled into the Rust sources the stages compile. Plain data; thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "libs/common/status.h"

namespace temper::rusteval {

enum class TaskFormat {
  kProgram,     // the completion is a whole program; `tests` (optional) is appended, #[cfg(test)] style
  kHumanEvalX,  // declaration + completion, then `tests`: a #[cfg(test)] module of #[test] fns
  kMultiplE,    // prompt + completion + `tests`: closes the function, then a `main` full of asserts
};
std::string_view TaskFormatName(TaskFormat f);

struct Task {
  std::string id;
  TaskFormat format = TaskFormat::kProgram;
  std::string prompt;       // what the model saw (HumanEval-X: doc comment; MultiPL-E: doc + signature)
  std::string declaration;  // HumanEval-X: imports + signature the completion continues
  std::string tests;
  std::string canonical_solution;  // reference answer where the benchmark has one
  std::vector<std::string> stop_sequences;
};

struct Sample {
  std::shared_ptr<const Task> task;
  std::string completion;  // code only: see extraction.h for turning model output into this
};

// The sources a sample's stages compile.
struct AssembledSources {
  std::string check_source;       // stage 1 (clippy): the model's code without test scaffolding
  bool check_is_lib = false;      // stage 1 crate type: lib (no main needed) or bin
  std::string test_source;        // stage 2; empty when the task has no tests
  bool tests_use_harness = false;  // stage 2: `rustc --test` + libtest, or a plain `main` of asserts
  int completion_first_line = 1;  // 1-based line of the completion within check_source
};
AssembledSources Assemble(const Sample& sample);

// Loads the HumanEval-X Rust benchmark (JSON lines, optionally gzip-compressed).
absl::StatusOr<std::vector<std::shared_ptr<const Task>>> LoadHumanEvalX(const std::string& path);
// Loads MultiPL-E's HumanEval-rs (a JSON array; or JSON lines).
absl::StatusOr<std::vector<std::shared_ptr<const Task>>> LoadMultiplE(const std::string& path);

}  // namespace temper::rusteval
