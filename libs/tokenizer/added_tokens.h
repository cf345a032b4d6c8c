// Added tokens (special and not) and the leftmost-longest matcher that splits text on them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "libs/common/status.h"

namespace temper::tokenizer {

// One entry of tokenizer.json's "added_tokens".
struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;      // skipped by Decode with skip_special_tokens
  bool lstrip = false;       // the match swallows whitespace on its left
  bool rstrip = false;       // the match swallows whitespace on its right
  bool normalized = false;   // matched in normalized text rather than the raw input
  bool single_word = false;  // matches only when not inside a word
};

// Finds added tokens in text the way Hugging Face's AddedVocabulary does: an Aho-Corasick style
// leftmost-longest scan (here a byte trie), then the single_word / lstrip / rstrip rules.
// Immutable after Create; Split is safe to call from many threads at once.
class AddedTokenMatcher {
 public:
  // `tokens` must outlive the matcher. Fails on an empty content.
  static absl::StatusOr<std::unique_ptr<AddedTokenMatcher>> Create(
      std::vector<const AddedToken*> tokens);
  ~AddedTokenMatcher();

  bool empty() const { return tokens_.empty(); }

  // Calls fn(piece, token) for each piece of `text` in order: token is the added token a piece
  // is (its span may include stripped whitespace) or nullptr for ordinary text. Ordinary pieces
  // are never empty. REQUIRES: text is valid UTF-8.
  void Split(std::string_view text,
             absl::FunctionRef<void(std::string_view, const AddedToken*)> fn) const;

 private:
  struct Node;
  AddedTokenMatcher() = default;
  // The longest token matching at text[pos], or -1.
  int LongestAt(std::string_view text, size_t pos) const;

  std::vector<const AddedToken*> tokens_;
  std::vector<Node> nodes_;  // nodes_[0] is the root
  bool first_byte_[256] = {};
};

}  // namespace temper::tokenizer
