// PEFT LoRA adapters on disk: adapter_config.json + adapter_model.safetensors, with PEFT's tensor
// names (base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight). What PEFT writes for a
// LoRA of a Llama/Qwen2/Mistral model, this reads, and the reverse.
#pragma once

#include <string>

#include "libs/common/status.h"
#include "libs/model/lora.h"
#include "libs/model/model.h"

namespace temper::model {

// Parses adapter_config.json. Unimplemented for what we do not support (peft_type other than LORA,
// DoRA, rank_pattern / alpha_pattern, a regex target_modules other than "all-linear",
// modules_to_save, layers_to_transform, bias other than "none", fan_in_fan_out).
absl::StatusOr<LoraConfig> ReadAdapterConfig(const std::string& dir);

// Applies LoRA per `dir`'s config to `model` (which must have none yet) and loads its weights.
// InvalidArgument when a tensor is missing, unexpected or of the wrong shape.
absl::Status LoadAdapter(Transformer& model, const std::string& dir);

// Writes `dir`/adapter_config.json and `dir`/adapter_model.safetensors (each atomically; the
// directory is created). `base_model` goes to base_model_name_or_path.
absl::Status SaveAdapter(Transformer& model, const LoraConfig& config, const std::string& dir,
                         const std::string& base_model);

}  // namespace temper::model
