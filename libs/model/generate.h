// Batched sampling with a KV cache: greedy or temperature / top-k / top-p sampling, stop token
// sequences, stop strings (through a caller-supplied decoder, so libs/model needs no tokenizer),
// a token budget, and a streaming callback. Prompts of different lengths are left-padded.
//
// Reproducibility: sampling draws from one std::mt19937_64 per sequence, seeded from (seed,
// sequence index), on CPU copies of the final probabilities, so a sequence's tokens depend only on
// the model's logits, the seed and its index: not on the device, the batch size or the thread.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "libs/common/status.h"
#include "libs/model/model.h"

namespace temper::model {

struct SamplingOptions {
  int64_t max_new_tokens = 256;
  double temperature = 1.0;  // 0 = greedy (argmax; ties to the lowest id)
  double top_p = 1.0;        // nucleus: the smallest set of tokens whose probability reaches top_p
  int64_t top_k = 0;         // 0 = off
  uint64_t seed = 0;
  std::vector<int32_t> eos_token_ids;                 // finish (the token is kept)
  std::vector<std::vector<int32_t>> stop_sequences;   // finish when the output ends with one
  std::vector<std::string> stop_strings;              // finish when decode(output) contains one
  std::function<std::string(std::span<const int32_t>)> decode;  // needed for stop_strings
  int32_t pad_token_id = 0;  // fed for finished sequences and left padding (masked out)
};

enum class FinishReason { kLength, kEos, kStopSequence, kStopString, kCallback };

struct Generation {
  std::vector<int32_t> tokens;  // generated tokens only (stop tokens included)
  FinishReason finish = FinishReason::kLength;
};

// Called for each new token of sequence `index`; returning false finishes that sequence.
using TokenCallback = std::function<bool(size_t index, int32_t token)>;

// Samples continuations of `prompts` (each non-empty). InvalidArgument for bad options (negative
// temperature, top_p outside (0, 1], an empty prompt, stop_strings without decode, a token
// outside the vocabulary); Internal for libtorch errors.
absl::StatusOr<std::vector<Generation>> Generate(Transformer& model,
                                                 const std::vector<std::vector<int32_t>>& prompts,
                                                 const SamplingOptions& options,
                                                 const TokenCallback& on_token = {});

// Picks one token from logits [vocab] (float32 CPU) per the options' temperature/top-k/top-p.
int32_t SampleToken(const float* logits, int64_t vocab, const SamplingOptions& options, std::mt19937_64& rng);

}  // namespace temper::model
