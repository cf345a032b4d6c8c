// Helpers shared by libs/model's libtorch tests: tiny configs and model directories.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "libs/model/config.h"
#include "libs/model/path_util.h"

namespace temper::model::testing {

// A Llama-shaped (or Qwen2-shaped) config.json of the fixtures' size: vocab 256, hidden 64,
// 2 layers, 4 heads over 2 key/value heads.
inline nlohmann::json TinyConfigJson(const std::string& model_type = "llama") {
  nlohmann::json j = {{"model_type", model_type}, {"vocab_size", 256}, {"hidden_size", 64},
                      {"intermediate_size", 128}, {"num_hidden_layers", 2},
                      {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                      {"max_position_embeddings", 512}, {"rms_norm_eps", 1e-6},
                      {"rope_theta", 10000.0}, {"hidden_act", "silu"},
                      {"tie_word_embeddings", model_type == "qwen2"}};
  return j;
}

inline ModelConfig TinyConfig(const std::string& model_type = "llama") {
  return ModelConfig::FromJson(TinyConfigJson(model_type).dump()).value();
}

// A fresh directory under the system temp dir, removed by the destructor. POSIX calls, not
// std::filesystem (libs/model/path_util.h says why).
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    auto dir = MakeTempDir("temper_model_" + tag + "_");
    if (!dir.ok()) {
      std::fprintf(stderr, "TempDir: %s\n", std::string(dir.status().message()).c_str());
      std::abort();
    }
    path_ = *dir;
  }
  ~TempDir() { (void)RemoveTree(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path() const { return path_; }
  std::string Join(const std::string& name) const { return JoinPath(path_, name); }
  void Write(const std::string& name, const std::string& text) const { std::ofstream(Join(name)) << text; }

 private:
  std::string path_;
};

}  // namespace temper::model::testing
