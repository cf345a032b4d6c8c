#include "libs/model/config.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace temper::model {

namespace {

using nlohmann::json;

absl::Status Invalid(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("config.json: ", what));
}

absl::Status GetInt(const json& j, const char* key, int64_t* out, bool required = true) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    return required ? Invalid(absl::StrCat("missing \"", key, "\"")) : absl::OkStatus();
  }
  if (!it->is_number_integer() || it->get<int64_t>() < 0) {
    return Invalid(absl::StrCat("\"", key, "\" must be a non-negative integer"));
  }
  *out = it->get<int64_t>();
  return absl::OkStatus();
}

absl::Status GetDouble(const json& j, const char* key, double* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number()) return Invalid(absl::StrCat("\"", key, "\" must be a number"));
  *out = it->get<double>();
  return absl::OkStatus();
}

// Reads RoPE settings from transformers < 5 ("rope_theta" + "rope_scaling") or >= 5
// ("rope_parameters" holding rope_type, rope_theta and the scaling fields).
absl::Status ReadRope(const json& j, ModelConfig* c) {
  RETURN_IF_ERROR(GetDouble(j, "rope_theta", &c->rope_theta));
  const json* scaling = nullptr;
  for (const char* key : {"rope_parameters", "rope_scaling"}) {
    auto it = j.find(key);
    if (it != j.end() && !it->is_null()) {
      if (!it->is_object()) return Invalid(absl::StrCat("\"", key, "\" must be an object"));
      scaling = &*it;
      break;
    }
  }
  if (scaling == nullptr) return absl::OkStatus();
  RETURN_IF_ERROR(GetDouble(*scaling, "rope_theta", &c->rope_theta));
  std::string type = "default";
  for (const char* key : {"rope_type", "type"}) {
    auto it = scaling->find(key);
    if (it != scaling->end() && it->is_string()) {
      type = it->get<std::string>();
      break;
    }
  }
  if (type != "default" && type != "linear" && type != "llama3") {
    return absl::UnimplementedError(absl::StrCat("config.json: rope scaling type \"", type,
                                                 "\" is not supported (default, linear, llama3)"));
  }
  c->rope_scaling.type = type;
  RETURN_IF_ERROR(GetDouble(*scaling, "factor", &c->rope_scaling.factor));
  RETURN_IF_ERROR(GetDouble(*scaling, "low_freq_factor", &c->rope_scaling.low_freq_factor));
  RETURN_IF_ERROR(GetDouble(*scaling, "high_freq_factor", &c->rope_scaling.high_freq_factor));
  RETURN_IF_ERROR(GetInt(*scaling, "original_max_position_embeddings",
                         &c->rope_scaling.original_max_position_embeddings, /*required=*/false));
  if (type != "default" && c->rope_scaling.factor <= 0) return Invalid("rope factor must be > 0");
  if (type == "llama3" && c->rope_scaling.high_freq_factor <= c->rope_scaling.low_freq_factor) {
    return Invalid("llama3 rope scaling needs high_freq_factor > low_freq_factor");
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelConfig> Parse(const json& j) {
  if (!j.is_object()) return Invalid("not a JSON object");
  ModelConfig c;
  auto mt = j.find("model_type");
  if (mt == j.end() || !mt->is_string()) return Invalid("missing \"model_type\"");
  c.model_type = mt->get<std::string>();
  if (c.model_type != "llama" && c.model_type != "qwen2" && c.model_type != "mistral") {
    return absl::UnimplementedError(absl::StrCat("config.json: model_type \"", c.model_type,
                                                 "\" is not supported (llama, qwen2, mistral)"));
  }
  auto act = j.find("hidden_act");
  if (act != j.end() && !(act->is_string() && act->get<std::string>() == "silu")) {
    return absl::UnimplementedError("config.json: only hidden_act \"silu\" is supported");
  }
  RETURN_IF_ERROR(GetInt(j, "vocab_size", &c.vocab_size));
  RETURN_IF_ERROR(GetInt(j, "hidden_size", &c.hidden_size));
  RETURN_IF_ERROR(GetInt(j, "intermediate_size", &c.intermediate_size));
  RETURN_IF_ERROR(GetInt(j, "num_hidden_layers", &c.num_hidden_layers));
  RETURN_IF_ERROR(GetInt(j, "num_attention_heads", &c.num_attention_heads));
  c.num_key_value_heads = c.num_attention_heads;
  RETURN_IF_ERROR(GetInt(j, "num_key_value_heads", &c.num_key_value_heads, false));
  RETURN_IF_ERROR(GetInt(j, "max_position_embeddings", &c.max_position_embeddings, false));
  if (c.num_attention_heads == 0 || c.num_key_value_heads == 0 ||
      c.num_attention_heads % c.num_key_value_heads != 0) {
    return Invalid("num_attention_heads must be a positive multiple of num_key_value_heads");
  }
  if (c.hidden_size == 0 || c.vocab_size == 0 || c.intermediate_size == 0) {
    return Invalid("hidden_size, intermediate_size and vocab_size must be positive");
  }
  c.head_dim = c.hidden_size / c.num_attention_heads;
  RETURN_IF_ERROR(GetInt(j, "head_dim", &c.head_dim, false));
  if (c.head_dim == 0 || c.head_dim % 2 != 0) return Invalid("head_dim must be positive and even");
  if (!j.contains("head_dim") && c.hidden_size % c.num_attention_heads != 0) {
    return Invalid("hidden_size must be a multiple of num_attention_heads");
  }
  RETURN_IF_ERROR(GetDouble(j, "rms_norm_eps", &c.rms_norm_eps));
  RETURN_IF_ERROR(ReadRope(j, &c));
  c.tie_word_embeddings = j.value("tie_word_embeddings", false);
  if (c.model_type == "qwen2") {
    c.qkv_bias = true;
    if (j.value("use_sliding_window", false)) {
      int64_t w = 0;
      RETURN_IF_ERROR(GetInt(j, "sliding_window", &w));
      c.sliding_window = w;
    }
  } else if (c.model_type == "llama") {
    c.qkv_bias = c.o_bias = j.value("attention_bias", false);
    c.mlp_bias = j.value("mlp_bias", false);
  } else {  // mistral
    int64_t w = 0;
    auto sw = j.find("sliding_window");
    if (sw != j.end() && !sw->is_null()) {
      RETURN_IF_ERROR(GetInt(j, "sliding_window", &w));
      c.sliding_window = w;
    }
  }
  for (const char* key : {"torch_dtype", "dtype"}) {
    auto it = j.find(key);
    if (it != j.end() && it->is_string()) c.dtype = it->get<std::string>();
  }
  auto eos = j.find("eos_token_id");
  if (eos != j.end()) {
    if (eos->is_number_integer()) c.eos_token_ids.push_back(eos->get<int64_t>());
    if (eos->is_array()) {
      for (const json& e : *eos) {
        if (e.is_number_integer()) c.eos_token_ids.push_back(e.get<int64_t>());
      }
    }
  }
  auto bos = j.find("bos_token_id");
  if (bos != j.end() && bos->is_number_integer()) c.bos_token_id = bos->get<int64_t>();
  return c;
}

}  // namespace

absl::StatusOr<ModelConfig> ModelConfig::FromJson(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Invalid("not valid JSON");
  try {
    return Parse(j);
  } catch (const json::exception& e) {  // a wrongly typed optional field (value<bool> on a string)
    return Invalid(e.what());
  }
}

absl::StatusOr<ModelConfig> ModelConfig::FromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  auto c = FromJson(ss.str());
  if (!c.ok()) return absl::Status(c.status().code(), absl::StrCat(path, ": ", c.status().message()));
  return c;
}

}  // namespace temper::model
