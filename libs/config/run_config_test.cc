#include "libs/config/run_config.h"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "gtest/gtest.h"

namespace temper {
namespace {

std::string SourceDir() {
  const char* dir = std::getenv("TEMPER_SOURCE_DIR");
  return dir != nullptr ? dir : ".";
}

std::string ReadFile(const std::string& rel) {
  std::ifstream in(SourceDir() + "/" + rel, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Debug, Print) {
  for (const char* f : {"minimal", "unknown_keys", "wrong_types", "out_of_range", "missing_required",
                        "bad_choices", "duplicate_keys", "syntax_error", "sql_name", "cross_field",
                        "bad_sweep", "sweep_point_invalid", "null_values", "invalid_utf8",
                        "two_documents"}) {
    std::string name = std::string(f) + ".yaml";
    auto r = ParseRunConfigYaml(ReadFile("tests/fixtures/config/" + name), name);
    std::cout << (r.ok() ? "OK " + name : std::string(r.status().message())) << "\n\n";
  }
  for (const char* f : {"examples/run.yaml", "examples/sweep.yaml"}) {
    auto r = ParseRunConfigYaml(ReadFile(f), f);
    std::cout << (r.ok() ? RunConfigToYaml(*r) : std::string(r.status().message())) << "\n\n";
  }
}

}  // namespace
}  // namespace temper
