// Helpers shared by rusteval's tests: fixture paths under tests/fixtures/rusteval.
#pragma once

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace temper::rusteval::testing {

inline std::string FixturePath(const std::string& name) {
  const char* root = std::getenv("TEMPER_SOURCE_DIR");
  return std::string(root ? root : ".") + "/tests/fixtures/rusteval/" + name;
}

inline std::string ReadFixture(const std::string& name) {
  std::ifstream in(FixturePath(name));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace temper::rusteval::testing
