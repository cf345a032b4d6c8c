// Byte-level BPE: a raw-byte vocabulary, merge ranks keyed by id pairs, and a bounded word cache.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <mutex>

#include "absl/container/flat_hash_map.h"
#include "libs/common/status.h"

namespace temper::tokenizer {

// A byte-level BPE model as Hugging Face `tokenizers` runs it: a word (raw bytes) starts as one
// symbol per byte and the lowest-ranked adjacent pair is merged (leftmost first on ties) until no
// pair has a merge. Immutable after Create except for the word cache, which is internally
// synchronized: every const method is safe to call from many threads at once.
class BpeModel {
 public:
  struct Options {
    // When set, a word that is itself in the vocabulary becomes that one token without merging
    // (Llama 3's "ignore_merges").
    bool ignore_merges = false;
    // Words up to this many bytes have their ids cached; 0 turns the cache off.
    size_t cache_max_word_bytes = 64;
    // Upper bound on cached words (approximate: the cache is sharded and a full shard is cleared).
    size_t cache_capacity = 1 << 16;
  };

  // `vocab` maps byte-level token strings (the ByteLevel alphabet) to ids; `merges` lists pairs of
  // byte-level token strings, rank = position. Fails when a merge names a token outside the
  // vocabulary or ids are negative. Tokens whose text is outside the ByteLevel alphabet are kept
  // for IdToToken but can never be produced by Encode.
  static absl::StatusOr<std::unique_ptr<BpeModel>> Create(
      std::vector<std::pair<std::string, int32_t>> vocab,
      const std::vector<std::pair<std::string, std::string>>& merges, Options options);

  // Appends the ids of `word` (raw bytes, one pre-token) to *out. Uses and fills the cache.
  void EncodeWord(std::string_view word, std::vector<int32_t>* out) const;

  // EncodeWord without the cache and the ignore_merges shortcut's cache; `force_heap` picks the
  // priority-queue merge loop even for short words (tests compare both loops).
  void EncodeWordUncached(std::string_view word, std::vector<int32_t>* out,
                          bool force_heap = false) const;

  // The raw bytes a model token stands for, or nullptr for an id outside the model vocabulary.
  const std::string* IdToBytes(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < id_to_bytes_.size() && has_id_[id]
               ? &id_to_bytes_[id]
               : nullptr;
  }
  // True when the token text of `id` is outside the ByteLevel alphabet; IdToBytes then holds the
  // token's own UTF-8 (what the ByteLevel decoder emits for it).
  bool IsRawText(int32_t id) const { return IdToBytes(id) && raw_text_[id]; }
  // The token string as written in tokenizer.json (ByteLevel alphabet), or nullopt.
  std::optional<std::string> IdToToken(int32_t id) const;
  // The id of a token string as written in tokenizer.json, or nullopt.
  std::optional<int32_t> TokenToId(std::string_view token) const;
  // One past the largest model id.
  size_t id_limit() const { return id_to_bytes_.size(); }
  size_t vocab_size() const { return vocab_size_; }

 private:
  // std::mutex rather than absl::Mutex: Debian's Abseil keeps deadlock detection on, which
  // costs more than the cached BPE itself.
  struct CacheShard {
    std::mutex mu;
    absl::flat_hash_map<std::string, std::vector<int32_t>> words;  // guarded by mu
  };
  static constexpr size_t kCacheShards = 16;
  static constexpr size_t kLinearMaxSymbols = 48;

  explicit BpeModel(Options options) : options_(options) {}
  // The merge (rank << 32 | new id) of the pair (left, right), or kNoMerge.
  uint64_t LookupMerge(int32_t left, int32_t right) const {
    auto it = merges_.find((uint64_t(uint32_t(left)) << 32) | uint32_t(right));
    return it == merges_.end() ? kNoMerge : it->second;
  }
  void MergeLinear(int32_t* ids, size_t n, std::vector<int32_t>* out) const;
  void MergeHeap(const int32_t* ids, size_t n, std::vector<int32_t>* out) const;

  static constexpr uint64_t kNoMerge = ~uint64_t{0};

  Options options_;
  size_t vocab_size_ = 0;
  std::vector<std::string> id_to_bytes_;
  std::vector<bool> has_id_;
  std::vector<bool> raw_text_;
  absl::flat_hash_map<std::string, int32_t> bytes_to_id_;  // alphabet tokens only, by raw bytes
  absl::flat_hash_map<std::string, int32_t> raw_text_to_id_;  // tokens outside the alphabet
  absl::flat_hash_map<uint64_t, uint64_t> merges_;
  int32_t byte_id_[256];  // -1 where a byte has no token (its bytes are then dropped, as in HF)
  std::unique_ptr<CacheShard[]> cache_;
};

}  // namespace temper::tokenizer
