// The architecture hyper-parameters of a Hugging Face config.json (Llama, Qwen2, Mistral). Plain
// C++: parsing and validation only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "libs/common/status.h"

namespace temper::model {

// RoPE frequency scaling. type "default" (none), "linear" (positions / factor) or "llama3"
// (Llama 3.1's piecewise scaling of low frequencies; HF _compute_llama3_parameters).
struct RopeScaling {
  std::string type = "default";
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string model_type;  // "llama", "qwen2", "mistral"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // config "head_dim", else hidden_size / num_attention_heads
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // Qwen2 always; Llama when attention_bias
  bool o_bias = false;    // Llama when attention_bias
  bool mlp_bias = false;  // Llama when mlp_bias
  std::optional<int64_t> sliding_window;  // Mistral (and Qwen2 with use_sliding_window)
  std::string dtype;      // "torch_dtype" / "dtype" as written ("bfloat16", ...), may be empty
  std::vector<int64_t> eos_token_ids;
  std::optional<int64_t> bos_token_id;

  // Parses config.json text. InvalidArgument for missing or inconsistent fields (heads not
  // dividing, ...), Unimplemented for another model_type, hidden_act other than silu, or a RoPE
  // scaling type not listed above.
  static absl::StatusOr<ModelConfig> FromJson(std::string_view json);
  static absl::StatusOr<ModelConfig> FromFile(const std::string& path);
};

}  // namespace temper::model
