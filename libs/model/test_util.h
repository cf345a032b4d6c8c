// Helpers shared by libs/model's libtorch tests: tiny configs and model directories.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "libs/model/config.h"

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

// A fresh directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    path_ = std::filesystem::temp_directory_path() /
            ("temper_model_" + tag + "_" + std::to_string(getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string path() const { return path_.string(); }
  std::string Join(const std::string& name) const { return (path_ / name).string(); }
  void Write(const std::string& name, const std::string& text) const { std::ofstream(Join(name)) << text; }

 private:
  std::filesystem::path path_;
};

}  // namespace temper::model::testing
