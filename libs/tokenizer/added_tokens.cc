#include "libs/tokenizer/added_tokens.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/tokenizer/utf8.h"

namespace temper::tokenizer {
namespace {

// Unicode White_Space (Rust regex's \s, which the reference strips with).
bool IsWhiteSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// An approximation of Rust regex's Unicode \w for the single_word rule: ASCII word characters,
// plus every non-ASCII character that is not white space. Neither Llama 3 nor Qwen 3 sets
// single_word; docs/tokenizer.md notes the approximation.
bool IsWordChar(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  return !IsWhiteSpace(c);
}

// The code point ending just before byte offset `end`.
char32_t LastCodePoint(std::string_view text, size_t end) {
  size_t start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  return DecodeUtf8(text, &start);
}

}  // namespace

struct AddedTokenMatcher::Node {
  std::vector<std::pair<unsigned char, int>> children;  // sorted by byte
  int token = -1;                                       // index into tokens_ ending here
};

AddedTokenMatcher::~AddedTokenMatcher() = default;

absl::StatusOr<std::unique_ptr<AddedTokenMatcher>> AddedTokenMatcher::Create(
    std::vector<const AddedToken*> tokens) {
  std::unique_ptr<AddedTokenMatcher> m(new AddedTokenMatcher());
  m->tokens_ = std::move(tokens);
  m->nodes_.emplace_back();
  for (size_t t = 0; t < m->tokens_.size(); ++t) {
    const std::string& content = m->tokens_[t]->content;
    if (content.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("added token ", m->tokens_[t]->id, " has empty content"));
    }
    m->first_byte_[static_cast<unsigned char>(content[0])] = true;
    int node = 0;
    for (unsigned char c : content) {
      auto& children = m->nodes_[node].children;
      auto it = std::lower_bound(children.begin(), children.end(), std::make_pair(c, -1));
      if (it != children.end() && it->first == c) {
        node = it->second;
      } else {
        int child = static_cast<int>(m->nodes_.size());
        children.insert(it, {c, child});
        m->nodes_.emplace_back();
        node = child;
      }
    }
    // The same content twice: the later entry wins, as in the reference's content map.
    m->nodes_[node].token = static_cast<int>(t);
  }
  return m;
}

int AddedTokenMatcher::LongestAt(std::string_view text, size_t pos) const {
  int node = 0;
  int best = -1;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto& children = nodes_[node].children;
    unsigned char c = static_cast<unsigned char>(text[i]);
    auto it = std::lower_bound(children.begin(), children.end(), std::make_pair(c, -1));
    if (it == children.end() || it->first != c) break;
    node = it->second;
    if (nodes_[node].token >= 0) best = nodes_[node].token;
  }
  return best;
}

void AddedTokenMatcher::Split(
    std::string_view text, absl::FunctionRef<void(std::string_view, const AddedToken*)> fn) const {
  size_t emitted = 0;  // end of the last piece handed to fn
  size_t pos = 0;
  const size_t n = text.size();
  while (pos < n) {
    if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    int t = LongestAt(text, pos);
    if (t < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = *tokens_[t];
    size_t start = pos;
    size_t stop = pos + token.content.size();
    pos = stop;  // the scan resumes after the match, kept or not
    if (token.single_word) {
      bool word_before = start > 0 && IsWordChar(LastCodePoint(text, start));
      size_t after = stop;
      bool word_after = stop < n && IsWordChar(DecodeUtf8(text, &after));
      if (word_before || word_after) continue;
    }
    if (token.lstrip) {
      while (start > emitted) {
        size_t prev = start - 1;
        while (prev > 0 && (static_cast<unsigned char>(text[prev]) & 0xC0) == 0x80) --prev;
        size_t probe = prev;
        if (!IsWhiteSpace(DecodeUtf8(text, &probe))) break;
        start = prev;
      }
    }
    if (token.rstrip) {
      while (stop < n) {
        size_t next = stop;
        if (!IsWhiteSpace(DecodeUtf8(text, &next))) break;
        stop = next;
      }
      pos = stop;
    }
    if (start > emitted) fn(text.substr(emitted, start - emitted), nullptr);
    fn(text.substr(start, stop - start), &token);
    emitted = stop;
  }
  if (emitted < n) fn(text.substr(emitted), nullptr);
}

}  // namespace temper::tokenizer
