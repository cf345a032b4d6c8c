#include "services/trainer-worker/tiny_model.h"

#include <filesystem>

#include "libs/model/config.h"
#include "libs/model/hf_checkpoint.h"
#include "libs/model/model.h"
#include "libs/model/safetensors.h"
#include "libs/model/torch_util.h"
#include "nlohmann/json.hpp"

namespace temper::trainerworker {

absl::Status EnsureTinyRandomModel(const std::string& dir, uint64_t seed) {
  namespace fs = std::filesystem;
  if (fs::exists(fs::path(dir) / "config.json") && fs::exists(fs::path(dir) / "model.safetensors")) return absl::OkStatus();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return absl::InternalError("cannot create " + dir + ": " + ec.message());
  nlohmann::json config = {{"model_type", "llama"}, {"architectures", {"LlamaForCausalLM"}},
                           {"vocab_size", 256}, {"hidden_size", 64}, {"intermediate_size", 128},
                           {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
                           {"max_position_embeddings", 4096}, {"rms_norm_eps", 1e-6}, {"rope_theta", 10000.0},
                           {"hidden_act", "silu"}, {"tie_word_embeddings", false}, {"eos_token_id", kTinyEosId},
                           {"torch_dtype", "float32"},
                           {"temper_note", "random tiny model made by temper-trainer-worker --tiny-model; it knows nothing"}};
  ASSIGN_OR_RETURN(model::ModelConfig parsed, model::ModelConfig::FromJson(config.dump()));
  absl::Status saved;
  RETURN_IF_ERROR(model::CatchTorch("building the tiny model", [&] {
    torch::manual_seed(seed);
    model::Transformer m(parsed);
    torch::NoGradGuard no_grad;
    // Small weights so the untrained model's logits are near uniform.
    for (auto& p : m->parameters()) {
      if (p.dim() >= 2) p.normal_(0.0, 0.02);
    }
    saved = model::SaveHfWeights(m, dir + "/model.safetensors");
  }));
  RETURN_IF_ERROR(saved);
  return model::WriteFileAtomically(dir + "/config.json", config.dump(2) + "\n");
}

}  // namespace temper::trainerworker
