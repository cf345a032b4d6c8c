// A deterministic random tiny Llama written as a Hugging Face model directory (config.json +
// model.safetensors), for running the training path on a CPU without a real model. It knows
// nothing: its outputs are noise until trained, and its "tokenizer" is bytes (train::ByteTokenizer).
#pragma once

#include <cstdint>
#include <string>

#include "libs/common/status.h"

namespace temper::trainerworker {

// vocab 256 (bytes), hidden 64, 2 layers, 4 heads over 2 key/value heads, EOS = 0 (NUL byte).
inline constexpr int32_t kTinyEosId = 0;

// Writes the model to `dir` (created) unless `dir`/config.json exists already. The weights
// depend only on `seed`. Internal on I/O errors.
absl::Status EnsureTinyRandomModel(const std::string& dir, uint64_t seed);

}  // namespace temper::trainerworker
