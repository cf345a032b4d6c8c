#include "libs/tokenizer/bpe_model.h"

#include <algorithm>
#include <cstring>
#include <queue>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "libs/tokenizer/absl_view.h"
#include "libs/tokenizer/byte_level.h"

namespace temper::tokenizer {

absl::StatusOr<std::unique_ptr<BpeModel>> BpeModel::Create(
    std::vector<std::pair<std::string, int32_t>> vocab,
    const std::vector<std::pair<std::string, std::string>>& merges, Options options) {
  std::unique_ptr<BpeModel> model(new BpeModel(options));
  int32_t max_id = -1;
  for (const auto& [token, id] : vocab) {
    if (id < 0) return absl::InvalidArgumentError(absl::StrCat("BPE vocab: negative id for ", AV(token)));
    max_id = std::max(max_id, id);
  }
  model->id_to_bytes_.resize(static_cast<size_t>(max_id) + 1);
  model->has_id_.assign(model->id_to_bytes_.size(), false);
  model->raw_text_.assign(model->id_to_bytes_.size(), false);
  model->vocab_size_ = vocab.size();
  std::fill(std::begin(model->byte_id_), std::end(model->byte_id_), -1);

  // Token text as written in tokenizer.json -> id, for resolving merges.
  absl::flat_hash_map<absl::string_view, int32_t> by_text;
  by_text.reserve(vocab.size());
  for (const auto& [token, id] : vocab) {
    if (model->has_id_[id]) {
      return absl::InvalidArgumentError(absl::StrCat("BPE vocab: id ", id, " is used twice"));
    }
    model->has_id_[id] = true;
    by_text.emplace(token, id);
    std::optional<std::string> bytes = ByteLevelToBytes(token);
    if (bytes) {
      if (bytes->size() == 1) model->byte_id_[static_cast<uint8_t>((*bytes)[0])] = id;
      model->bytes_to_id_.emplace(*bytes, id);
      model->id_to_bytes_[id] = std::move(*bytes);
    } else {
      model->raw_text_[id] = true;
      model->raw_text_to_id_.emplace(token, id);
      model->id_to_bytes_[id] = token;
    }
  }

  model->merges_.reserve(merges.size());
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    auto ia = by_text.find(a);
    auto ib = by_text.find(b);
    if (ia == by_text.end() || ib == by_text.end()) {
      return absl::InvalidArgumentError(absl::StrCat("BPE merge ", rank, " (\"", a, "\", \"", b,
                                                     "\") names a token outside the vocabulary"));
    }
    joined.assign(a).append(b);
    auto inew = by_text.find(AV(joined));
    if (inew == by_text.end()) {
      return absl::InvalidArgumentError(absl::StrCat("BPE merge ", rank, " (\"", a, "\", \"", b,
                                                     "\") makes a token outside the vocabulary"));
    }
    // A repeated pair keeps its last rank, as the reference's HashMap collect does.
    model->merges_[(uint64_t(uint32_t(ia->second)) << 32) | uint32_t(ib->second)] =
        (uint64_t(rank) << 32) | uint32_t(inew->second);
  }
  if (options.cache_max_word_bytes > 0 && options.cache_capacity > 0) {
    model->cache_ = std::make_unique<CacheShard[]>(kCacheShards);
  }
  return model;
}

std::optional<std::string> BpeModel::IdToToken(int32_t id) const {
  const std::string* bytes = IdToBytes(id);
  if (!bytes) return std::nullopt;
  return raw_text_[id] ? *bytes : BytesToByteLevel(*bytes);
}

std::optional<int32_t> BpeModel::TokenToId(std::string_view token) const {
  if (std::optional<std::string> bytes = ByteLevelToBytes(token)) {
    auto it = bytes_to_id_.find(*bytes);
    if (it != bytes_to_id_.end()) return it->second;
    return std::nullopt;
  }
  auto it = raw_text_to_id_.find(AV(token));
  if (it != raw_text_to_id_.end()) return it->second;
  return std::nullopt;
}

void BpeModel::EncodeWord(std::string_view word, std::vector<int32_t>* out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    auto it = bytes_to_id_.find(AV(word));
    if (it != bytes_to_id_.end()) {
      out->push_back(it->second);
      return;
    }
  }
  if (word.size() == 1) {
    int32_t id = byte_id_[static_cast<uint8_t>(word[0])];
    if (id >= 0) out->push_back(id);
    return;
  }
  if (!cache_ || word.size() > options_.cache_max_word_bytes) {
    EncodeWordUncached(word, out);
    return;
  }
  const size_t hash = absl::Hash<absl::string_view>{}(AV(word));
  CacheShard& shard = cache_[(hash >> 40) % kCacheShards];
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    auto it = shard.words.find(AV(word));
    if (it != shard.words.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t before = out->size();
  EncodeWordUncached(word, out);
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.words.size() >= std::max<size_t>(1, options_.cache_capacity / kCacheShards)) {
    shard.words.clear();
  }
  shard.words.try_emplace(std::string(word), out->begin() + static_cast<std::ptrdiff_t>(before), out->end());
}

void BpeModel::EncodeWordUncached(std::string_view word, std::vector<int32_t>* out,
                                  bool force_heap) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    auto it = bytes_to_id_.find(AV(word));
    if (it != bytes_to_id_.end()) {
      out->push_back(it->second);
      return;
    }
  }
  if (word.size() <= kLinearMaxSymbols && !force_heap) {
    int32_t ids[kLinearMaxSymbols];
    size_t n = 0;
    for (unsigned char c : word) {
      if (byte_id_[c] >= 0) ids[n++] = byte_id_[c];
    }
    MergeLinear(ids, n, out);
    return;
  }
  std::vector<int32_t> ids;
  ids.reserve(word.size());
  for (unsigned char c : word) {
    if (byte_id_[c] >= 0) ids.push_back(byte_id_[c]);
  }
  MergeHeap(ids.data(), ids.size(), out);
}

// Short words: rescan the pair ranks each round; only the two pairs next to a merge change.
void BpeModel::MergeLinear(int32_t* ids, size_t n, std::vector<int32_t>* out) const {
  uint64_t merge[kLinearMaxSymbols];  // merge[i]: the merge of (ids[i], ids[i+1]); rank is high
  for (size_t i = 0; i + 1 < n; ++i) merge[i] = LookupMerge(ids[i], ids[i + 1]);
  while (n > 1) {
    size_t best = 0;
    uint64_t best_merge = merge[0];
    for (size_t i = 1; i + 1 < n; ++i) {
      if (merge[i] < best_merge) {  // strict: the leftmost of equal ranks wins
        best_merge = merge[i];
        best = i;
      }
    }
    if (best_merge == kNoMerge) break;
    ids[best] = static_cast<int32_t>(uint32_t(best_merge));
    if (n - best > 2) {
      std::memmove(ids + best + 1, ids + best + 2, (n - best - 2) * sizeof(int32_t));
    }
    if (n - best > 3) {
      std::memmove(merge + best + 1, merge + best + 2, (n - best - 3) * sizeof(uint64_t));
    }
    --n;
    if (best > 0) merge[best - 1] = LookupMerge(ids[best - 1], ids[best]);
    if (best + 1 < n) merge[best] = LookupMerge(ids[best], ids[best + 1]);
  }
  out->insert(out->end(), ids, ids + n);
}

// Long words: a priority queue of candidate merges ordered by (rank, position) over a linked
// list of symbols, as the reference does; stale candidates are skipped when popped.
void BpeModel::MergeHeap(const int32_t* ids, size_t n, std::vector<int32_t>* out) const {
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
  };
  struct Candidate {
    uint32_t rank;
    uint32_t pos;
    int32_t new_id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::vector<Symbol> symbols(n);
  for (size_t i = 0; i < n; ++i) {
    symbols[i] = {ids[i], static_cast<int32_t>(i) - 1,
                  i + 1 < n ? static_cast<int32_t>(i + 1) : -1, true};
  }
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto push = [&](size_t pos) {
    const Symbol& s = symbols[pos];
    if (s.next < 0) return;
    uint64_t m = LookupMerge(s.id, symbols[s.next].id);
    if (m != kNoMerge) {
      queue.push({uint32_t(m >> 32), uint32_t(pos), static_cast<int32_t>(uint32_t(m))});
    }
  };
  for (size_t i = 0; i + 1 < n; ++i) push(i);
  while (!queue.empty()) {
    Candidate top = queue.top();
    queue.pop();
    Symbol& s = symbols[top.pos];
    if (!s.alive || s.next < 0) continue;
    uint64_t m = LookupMerge(s.id, symbols[s.next].id);
    if (m == kNoMerge || uint32_t(m >> 32) != top.rank) continue;
    Symbol& right = symbols[s.next];
    right.alive = false;
    s.id = top.new_id;
    s.next = right.next;
    if (s.next >= 0) symbols[s.next].prev = static_cast<int32_t>(top.pos);
    if (s.prev >= 0) push(static_cast<size_t>(s.prev));
    push(top.pos);
  }
  for (size_t i = 0; i < n; i = symbols[i].next >= 0 ? size_t(symbols[i].next) : n) {
    out->push_back(symbols[i].id);
  }
}

}  // namespace temper::tokenizer
