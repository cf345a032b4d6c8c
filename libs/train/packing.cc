#include "libs/train/packing.h"

#include <algorithm>

namespace temper::train {
namespace {

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

Packer::Packer(const std::vector<Example>* examples, PackingOptions options)
    : examples_(examples), options_(options) {}

std::vector<int64_t> Packer::Order(int64_t epoch) const {
  const int64_t n = static_cast<int64_t>(examples_->size());
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  uint64_t state = options_.seed * 0x100000001B3ull ^ static_cast<uint64_t>(epoch) * 0x9E3779B97F4A7C15ull;
  for (int64_t i = n - 1; i > 0; --i) {
    int64_t j = static_cast<int64_t>(SplitMix64(state) % static_cast<uint64_t>(i + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

const std::vector<int64_t>& Packer::CachedOrder(int64_t epoch) {
  if (epoch != cached_epoch_) {
    cached_order_ = Order(epoch);
    cached_epoch_ = epoch;
  }
  return cached_order_;
}

PackedBatch Packer::Next(DataCursor* cursor) {
  const int64_t rows = options_.rows, t = options_.seq_len;
  std::vector<int64_t> ids(rows * t, options_.pad_id), pos(rows * t, 0), doc(rows * t, -1), tgt(rows * t, -100);
  std::vector<float> w(rows * t, 0.0f);
  PackedBatch batch;
  const int64_t n = static_cast<int64_t>(examples_->size());
  for (int64_t r = 0; r < rows; ++r) {
    int64_t used = 0, docs_in_row = 0;
    while (true) {
      if (cursor->index >= n) {
        ++cursor->epoch;
        cursor->index = 0;
      }
      const Example& e = (*examples_)[CachedOrder(cursor->epoch)[cursor->index]];
      const int64_t plen = static_cast<int64_t>(e.prompt.size()), clen = static_cast<int64_t>(e.completion.size());
      int64_t len = plen + clen;
      if (docs_in_row > 0 && (!options_.packing || used + std::min(len, t) > t)) break;
      // Truncation: keep the end of the prompt and the start of the completion.
      int64_t keep_c = clen, keep_p = plen;
      if (len > t) {
        keep_c = std::min(clen, std::max(t / 2, t - plen));
        keep_p = std::min(plen, t - keep_c);
        ++batch.truncated;
        len = keep_p + keep_c;
      }
      const int64_t base = r * t + used;
      for (int64_t i = 0; i < len; ++i) {
        const bool in_prompt = i < keep_p;
        ids[base + i] = in_prompt ? e.prompt[plen - keep_p + i] : e.completion[i - keep_p];
        pos[base + i] = i;
        doc[base + i] = docs_in_row;
        // Position i predicts token i + 1; only completion tokens are targets.
        if (i + 1 < len && i + 1 >= keep_p) {
          tgt[base + i] = e.completion[i + 1 - keep_p];
          w[base + i] = e.weight;
        }
      }
      used += len;
      ++docs_in_row;
      ++batch.documents;
      batch.tokens += len;
      ++cursor->index;
      if (used >= t) break;
    }
  }
  auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  batch.input_ids = torch::tensor(ids, i64).view({rows, t});
  batch.position_ids = torch::tensor(pos, i64).view({rows, t});
  batch.doc_ids = torch::tensor(doc, i64).view({rows, t});
  batch.targets = torch::tensor(tgt, i64).view({rows, t});
  batch.weights = torch::tensor(w, torch::TensorOptions().dtype(torch::kFloat32)).view({rows, t});
  return batch;
}

}  // namespace temper::train
