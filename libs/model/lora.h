// LoRA (Hu et al. 2021) as PEFT implements it, applied to a finished Transformer from outside:
// for each chosen projection, y = base(x) + B(A(dropout(x))) * scaling with A [r, in] initialised
// kaiming-uniform (a = sqrt(5)), B [out, r] zeros, scaling = alpha / r (or alpha / sqrt(r) with
// rsLoRA). Everything else is frozen. peft_adapter.h reads and writes PEFT's file format.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "libs/common/status.h"
#include "libs/model/model.h"

namespace temper::model {

struct LoraConfig {
  int64_t r = 8;
  double alpha = 16.0;
  double dropout = 0.0;
  bool use_rslora = false;
  // Any of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj.
  std::vector<std::string> target_modules = {"q_proj", "k_proj", "v_proj", "o_proj",
                                             "gate_proj", "up_proj", "down_proj"};

  double scaling() const;
  // InvalidArgument for r <= 0, dropout outside [0, 1), no or unknown target modules.
  absl::Status Validate() const;
};

// Attaches LoRA factors to the targeted projections and freezes every other parameter. `seed`
// makes A's initialisation reproducible. FailedPrecondition if LoRA is already attached.
absl::Status ApplyLora(Transformer& model, const LoraConfig& config, uint64_t seed);

// The LoRA tensors under PEFT's saved names
// ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"), in layer order. The tensors
// are the live parameters (the trainer's optimizer takes them).
std::vector<std::pair<std::string, torch::Tensor>> LoraParameters(Transformer& model);

}  // namespace temper::model
