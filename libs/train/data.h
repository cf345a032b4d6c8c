// Training examples: (prompt, completion, weight) token sequences, read from JSONL. Loss is taken
// on completion tokens only (prompt masking); `weight` scales every completion token of its
// example (the reward, in expert iteration). Plain C++ (no libtorch).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "libs/common/status.h"

namespace temper::train {

struct Example {
  std::vector<int32_t> prompt;      // no loss
  std::vector<int32_t> completion;  // loss on each token, predicted from everything before it
  float weight = 1.0f;              // >= 0, finite
};

// Text to token ids. libs/tokenizer's Tokenizer::Encode fits (without special tokens).
using TokenizeFn = std::function<absl::StatusOr<std::vector<int32_t>>(std::string_view)>;

struct DataOptions {
  std::optional<int32_t> bos_id;  // prepended to each prompt when set
  std::optional<int32_t> eos_id;  // appended to each completion when set (the model learns to stop)
  int64_t vocab_size = 0;         // when > 0, ids outside [0, vocab_size) are rejected
};

// Parses JSONL text, one example per non-blank line, either
//   {"prompt": "...", "completion": "...", "weight": 1.0}   (text; needs `tokenize`), or
//   {"prompt_ids": [...], "completion_ids": [...], "weight": 1.0}   (pre-tokenized).
// "weight" is optional (1.0). Prompt and completion are tokenized separately, so the boundary is
// exact. InvalidArgument naming `source` and the line for malformed JSON, missing fields, a
// negative or non-finite weight, an empty completion, an id outside the vocabulary, or text
// without a tokenizer; a tokenizer's error is passed on with the same context.
absl::StatusOr<std::vector<Example>> ParseExamplesJsonl(std::string_view text, const TokenizeFn& tokenize,
                                                        const DataOptions& options, const std::string& source);

// Reads `path` and parses it as above. NotFound when it cannot be read.
absl::StatusOr<std::vector<Example>> ReadExamplesJsonl(const std::string& path, const TokenizeFn& tokenize,
                                                       const DataOptions& options);

// A tokenizer for byte-level toy models: each UTF-8 byte is its own id (0..255). Used with the
// random tiny models of tests and `temper-trainer-worker --tiny-model`, which have no tokenizer.
TokenizeFn ByteTokenizer();
std::string ByteDetokenize(const std::vector<int32_t>& ids);

}  // namespace temper::train
