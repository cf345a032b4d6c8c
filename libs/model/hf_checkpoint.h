// Hugging Face model directories to Transformers: config.json plus model.safetensors, or the
// shards a model.safetensors.index.json names. Checkpoint format conversion lives here and only
// here (STYLE.md 10); the architecture is model.h.
#pragma once

#include <string>

#include <torch/torch.h>

#include "libs/common/status.h"
#include "libs/model/model.h"

namespace temper::model {

struct LoadOptions {
  torch::Dtype dtype = torch::kFloat32;  // parameters' dtype (compute dtype)
  torch::Device device = torch::kCPU;
  bool nf4 = false;  // store every projection of every layer in NF4 (QLoRA's frozen base)
};

// Builds the model `dir`/config.json describes and fills every parameter from the safetensors
// files. NotFound when config.json or a weight file is missing; InvalidArgument when a tensor is
// missing, has another shape, or the file holds tensors the model has no place for (listed);
// Unimplemented for unsupported architectures (config.h).
absl::StatusOr<Transformer> LoadHfModel(const std::string& dir, const LoadOptions& options = {});

// Writes the model's parameters as `dir`/model.safetensors (+ config is the caller's). Used by
// tests to make checkpoints; NF4 layers cannot be written (FailedPrecondition).
absl::Status SaveHfWeights(Transformer& model, const std::string& path);

}  // namespace temper::model
