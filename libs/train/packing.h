// Sequence packing: examples in a seeded order, packed greedily into rows of `seq_len` tokens.
// Each token carries its document number within the row and a position that restarts at 0 for
// every document, so attention can be kept inside documents (packed_forward.h builds the
// block-diagonal causal mask from doc_ids) and RoPE sees each document as if alone.
// Deterministic: the batch depends only on the examples, the options and the cursor, so a
// cursor saved mid-epoch resumes the exact sequence of batches. Not thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "libs/train/data.h"

namespace temper::train {

// Where the data stream stands: the next example is Order(epoch)[index].
struct DataCursor {
  int64_t epoch = 0;
  int64_t index = 0;
  bool operator==(const DataCursor&) const = default;
};

struct PackingOptions {
  int64_t seq_len = 2048;
  int64_t rows = 1;       // rows per micro-batch
  bool packing = true;    // false: one example per row (padded)
  uint64_t seed = 0;      // data order
  int32_t pad_id = 0;     // fed at padding positions (masked out, never attended to)
};

// One micro-batch. Every tensor is [rows, seq_len] on the CPU.
struct PackedBatch {
  torch::Tensor input_ids;     // int64
  torch::Tensor position_ids;  // int64; restarts at 0 at each document
  torch::Tensor doc_ids;       // int64; 0, 1, ... per row; -1 at padding
  torch::Tensor targets;       // int64; the next token where it is a completion token, else -100
  torch::Tensor weights;       // float32; the example's weight where targets >= 0, else 0
  int64_t documents = 0;
  int64_t tokens = 0;          // non-padding tokens
  int64_t truncated = 0;       // documents cut to fit seq_len
};

class Packer {
 public:
  // REQUIRES: !examples.empty(), options.seq_len >= 2, options.rows >= 1. Keeps a pointer to
  // `examples`, which must outlive the Packer.
  Packer(const std::vector<Example>* examples, PackingOptions options);

  // Packs the next micro-batch, advancing *cursor past the examples it took (into the next epoch
  // when it runs off the end). A document longer than seq_len keeps the end of its prompt and
  // the start of its completion (at least half the row is completion when the completion is
  // that long).
  PackedBatch Next(DataCursor* cursor);

  // The example order of an epoch: a Fisher-Yates shuffle driven by SplitMix64(seed, epoch), so
  // identical on every platform and standard library.
  std::vector<int64_t> Order(int64_t epoch) const;
  const PackingOptions& options() const { return options_; }

 private:
  const std::vector<int64_t>& CachedOrder(int64_t epoch);

  const std::vector<Example>* examples_;
  PackingOptions options_;
  int64_t cached_epoch_ = -1;
  std::vector<int64_t> cached_order_;
};

}  // namespace temper::train
