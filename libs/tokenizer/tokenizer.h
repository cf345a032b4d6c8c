// Hugging Face tokenizer.json tokenizers: byte-level BPE as used by Llama 3 and Qwen 2/3.
//
// What is supported (anything else in a tokenizer.json fails Load with Unimplemented rather than
// encoding differently from the reference):
//   normalizer      null | NFC
//   pre_tokenizer   ByteLevel | Sequence of Split (Regex, behavior Isolated, invert false) ending
//                   in ByteLevel (with or without its own GPT-2 regex, add_prefix_space honoured)
//   model           BPE over the ByteLevel alphabet, merges as "a b" or ["a", "b"], ignore_merges;
//                   no dropout, byte_fallback, continuing_subword_prefix or end_of_word_suffix
//   added_tokens    special, lstrip, rstrip, normalized, single_word
//   post_processor  null | ByteLevel | TemplateProcessing (single sequence) | Sequence of those
//   decoder         null | ByteLevel
// docs/tokenizer.md describes the design, the reference and the parity test.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "libs/common/status.h"
#include "libs/tokenizer/added_tokens.h"

namespace temper::tokenizer {

class BpeModel;
class RegexSplitter;
class AddedTokenMatcher;

struct EncodeOptions {
  // Add the post-processor's special tokens (e.g. a BOS from TemplateProcessing). Special tokens
  // written in the text are matched either way, as the reference does.
  bool add_special_tokens = true;
};

struct DecodeOptions {
  // Leave out added tokens marked "special" (e.g. <|im_end|>, <|begin_of_text|>).
  bool skip_special_tokens = false;
};

// A tokenizer loaded from tokenizer.json. Immutable after loading (its internal word cache is
// synchronized): every method is const and safe to call from many threads at once.
class Tokenizer {
 public:
  // Reads and parses a tokenizer.json. NotFound when the file cannot be read, InvalidArgument on
  // malformed JSON or inconsistent contents, Unimplemented for components listed above as not
  // supported (the message names the component).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromFile(const std::string& path);
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(std::string_view json);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // The token ids of `text`, identical to Hugging Face `tokenizers`' Tokenizer.encode(text,
  // add_special_tokens).ids. InvalidArgument when text is not valid UTF-8.
  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text,
                                              const EncodeOptions& options = {}) const;
  // Encode, appending to *ids (which keeps its earlier contents and capacity). On failure *ids
  // may hold a partial encoding.
  absl::Status EncodeTo(std::string_view text, const EncodeOptions& options,
                        std::vector<int32_t>* ids) const;

  // The text of `ids`, as the reference's decode(ids, skip_special_tokens): model tokens go
  // through the decoder (bytes, with each invalid UTF-8 subpart replaced by U+FFFD), added tokens
  // are written as their content. Ids that are in no vocabulary are skipped, as the reference does.
  std::string Decode(absl::Span<const int32_t> ids, const DecodeOptions& options = {}) const;

  // The id of a token string as written in tokenizer.json (added tokens first), or nullopt.
  std::optional<int32_t> TokenToId(std::string_view token) const;
  // The token string of an id as written in tokenizer.json, or nullopt.
  std::optional<std::string> IdToToken(int32_t id) const;
  // True when `id` is an added token marked special.
  bool IsSpecial(int32_t id) const;
  // One past the largest id of the model and the added tokens (the embedding rows needed).
  size_t id_limit() const { return id_limit_; }
  // The added tokens in file order.
  const std::vector<AddedToken>& added_tokens() const { return added_; }

 private:
  Tokenizer();
  friend class TokenizerLoader;

  // Normalizes (if configured), splits on normalized added tokens, pre-tokenizes and runs BPE.
  absl::Status EncodeOrdinary(std::string_view piece, std::vector<int32_t>* ids) const;
  absl::Status PreTokenize(size_t level, std::string_view piece, std::vector<int32_t>* ids) const;

  bool nfc_ = false;
  std::vector<std::unique_ptr<RegexSplitter>> splitters_;
  size_t prefix_space_level_ = 0;  // ByteLevel's add_prefix_space applies before this splitter
  bool add_prefix_space_ = false;
  std::unique_ptr<BpeModel> bpe_;
  std::vector<AddedToken> added_;
  absl::flat_hash_map<int32_t, size_t> added_by_id_;  // index into added_
  absl::flat_hash_map<std::string, int32_t> added_by_content_;
  std::unique_ptr<AddedTokenMatcher> raw_matcher_;         // tokens with normalized = false
  std::unique_ptr<AddedTokenMatcher> normalized_matcher_;  // tokens with normalized = true
  std::vector<int32_t> prefix_ids_;  // post-processor tokens before the sequence
  std::vector<int32_t> suffix_ids_;  // and after it
  bool byte_level_decoder_ = false;
  size_t id_limit_ = 0;
};

}  // namespace temper::tokenizer
