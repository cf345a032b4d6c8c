#include "libs/rusteval/task.h"

#include <zlib.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace temper::rusteval {
namespace {

using nlohmann::json;

int CountLines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

absl::StatusOr<std::string> ReadMaybeGzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files as they are
  if (f == nullptr) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  int err = 0;
  const char* msg = gzerror(f, &err);
  gzclose(f);
  if (n < 0) return absl::DataLossError(absl::StrCat(path, ": ", msg));
  return out;
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::string_view TaskFormatName(TaskFormat f) {
  switch (f) {
    case TaskFormat::kProgram:
      return "program";
    case TaskFormat::kHumanEvalX:
      return "humaneval-x";
    case TaskFormat::kMultiplE:
      return "multipl-e";
  }
  return "unknown";
}

AssembledSources Assemble(const Sample& sample) {
  static const Task kNoTask;
  const Task& task = sample.task ? *sample.task : kNoTask;
  AssembledSources out;
  switch (task.format) {
    case TaskFormat::kProgram:
      out.check_source = sample.completion;
      out.check_is_lib = false;
      if (!task.tests.empty()) {
        out.test_source = absl::StrCat(sample.completion, "\n", task.tests, "\n");
        out.tests_use_harness = true;
      }
      break;
    case TaskFormat::kHumanEvalX: {
      // The prompt is a comment: compiled too, so the line numbers match what the model saw.
      std::string head = absl::StrCat(task.prompt, task.declaration);
      out.completion_first_line = CountLines(head) + 1;
      out.check_source = absl::StrCat(head, sample.completion, "\n");
      out.check_is_lib = true;
      if (!task.tests.empty()) {
        out.test_source = absl::StrCat(out.check_source, "\n", task.tests, "\n");
        out.tests_use_harness = true;
      }
      break;
    }
    case TaskFormat::kMultiplE:
      // The tests close the function the prompt opened, so checking needs them too.
      out.completion_first_line = CountLines(task.prompt) + 1;
      out.check_source = absl::StrCat(task.prompt, sample.completion, task.tests, "\n");
      out.check_is_lib = false;
      out.test_source = out.check_source;
      out.tests_use_harness = false;
      break;
  }
  return out;
}

absl::StatusOr<std::vector<std::shared_ptr<const Task>>> LoadHumanEvalX(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadMaybeGzip(path));
  std::vector<std::shared_ptr<const Task>> tasks;
  std::istringstream in(text);
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, false);
    if (!j.is_object()) return absl::DataLossError(absl::StrCat(path, ":", line_no, ": not JSON"));
    auto task = std::make_shared<Task>();
    task->id = Str(j, "task_id");
    task->format = TaskFormat::kHumanEvalX;
    task->prompt = Str(j, "prompt");
    task->declaration = Str(j, "declaration");
    task->canonical_solution = Str(j, "canonical_solution");
    task->tests = Str(j, "test");
    task->stop_sequences = {"\n}\n\n", "\nfn main", "\n#[cfg(test)]", "\n```"};
    tasks.push_back(std::move(task));
  }
  return tasks;
}

absl::StatusOr<std::vector<std::shared_ptr<const Task>>> LoadMultiplE(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadMaybeGzip(path));
  std::vector<json> rows;
  json all = json::parse(text, nullptr, false);
  if (all.is_array()) {
    rows.assign(all.begin(), all.end());
  } else {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      json j = json::parse(line, nullptr, false);
      if (!j.is_object()) return absl::DataLossError(absl::StrCat(path, ": not JSON lines"));
      rows.push_back(std::move(j));
    }
  }
  std::vector<std::shared_ptr<const Task>> tasks;
  for (const json& j : rows) {
    auto task = std::make_shared<Task>();
    task->id = Str(j, "name");
    task->format = TaskFormat::kMultiplE;
    task->prompt = Str(j, "prompt");
    task->tests = Str(j, "tests");
    if (auto it = j.find("stop_tokens"); it != j.end() && it->is_array()) {
      for (const json& s : *it) {
        if (s.is_string()) task->stop_sequences.push_back(s.get<std::string>());
      }
    }
    tasks.push_back(std::move(task));
  }
  return tasks;
}

}  // namespace temper::rusteval
