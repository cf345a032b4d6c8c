#include "libs/tokenizer/tokenizer.h"

#include <fstream>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "libs/common/strings.h"
#include "libs/tokenizer/absl_view.h"
#include "libs/tokenizer/bpe_model.h"
#include "libs/tokenizer/nfc.h"
#include "libs/tokenizer/regex_splitter.h"
#include "libs/tokenizer/utf8.h"

namespace temper::tokenizer {

using nlohmann::json;

namespace {

// The pattern ByteLevel uses when its use_regex is set (GPT-2's).
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

absl::Status Unsupported(std::string_view what, const json& node) {
  return absl::UnimplementedError(
      absl::StrCat("tokenizer.json: unsupported ", AV(what), ": ", node.dump().substr(0, 300)));
}

bool IsNullOrEmpty(const json& obj, const char* key) {
  if (!obj.contains(key)) return true;
  const json& v = obj.at(key);
  return v.is_null() || (v.is_string() && v.get<std::string>().empty());
}

bool GetBool(const json& obj, const char* key, bool fallback) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? fallback : it->get<bool>();
}

}  // namespace

// Builds a Tokenizer from parsed JSON. Keeps nlohmann's exceptions inside FromJson.
class TokenizerLoader {
 public:
  static absl::Status Load(const json& root, Tokenizer* t) {
    for (const char* key : {"truncation", "padding"}) {
      if (root.contains(key) && !root.at(key).is_null()) return Unsupported(key, root.at(key));
    }
    RETURN_IF_ERROR(LoadNormalizer(root.value("normalizer", json()), t));
    RETURN_IF_ERROR(LoadPreTokenizer(root.value("pre_tokenizer", json()), t));
    RETURN_IF_ERROR(LoadModel(root.at("model"), t));
    RETURN_IF_ERROR(LoadAddedTokens(root.value("added_tokens", json::array()), t));
    RETURN_IF_ERROR(LoadPostProcessor(root.value("post_processor", json()), t));
    RETURN_IF_ERROR(LoadDecoder(root.value("decoder", json()), t));
    return absl::OkStatus();
  }

 private:
  static absl::Status LoadNormalizer(const json& n, Tokenizer* t) {
    if (n.is_null()) return absl::OkStatus();
    std::string type = n.value("type", "");
    if (type == "NFC") {
      t->nfc_ = true;
      return absl::OkStatus();
    }
    if (type == "Sequence" && n.value("normalizers", json::array()).empty()) return absl::OkStatus();
    return Unsupported("normalizer", n);
  }

  static absl::Status AddSplitter(std::string_view pattern, Tokenizer* t) {
    ASSIGN_OR_RETURN(std::unique_ptr<RegexSplitter> splitter, RegexSplitter::Create(pattern));
    t->splitters_.push_back(std::move(splitter));
    return absl::OkStatus();
  }

  static absl::Status LoadPreTokenizer(const json& p, Tokenizer* t) {
    if (p.is_null()) return Unsupported("pre_tokenizer (byte-level BPE needs ByteLevel)", p);
    std::vector<json> steps;
    if (p.value("type", "") == "Sequence") {
      for (const json& s : p.at("pretokenizers")) steps.push_back(s);
    } else {
      steps.push_back(p);
    }
    if (steps.empty() || steps.back().value("type", "") != "ByteLevel") {
      return Unsupported("pre_tokenizer (must end in ByteLevel)", p);
    }
    for (size_t i = 0; i + 1 < steps.size(); ++i) {
      const json& s = steps[i];
      if (s.value("type", "") != "Split") return Unsupported("pre_tokenizer step", s);
      if (s.value("behavior", "") != "Isolated" || GetBool(s, "invert", false)) {
        return Unsupported("Split behavior (only Isolated without invert)", s);
      }
      const json& pattern = s.at("pattern");
      if (!pattern.contains("Regex")) return Unsupported("Split pattern (only Regex)", s);
      RETURN_IF_ERROR(AddSplitter(pattern.at("Regex").get<std::string>(), t));
    }
    const json& byte_level = steps.back();
    t->prefix_space_level_ = t->splitters_.size();
    t->add_prefix_space_ = GetBool(byte_level, "add_prefix_space", true);
    if (GetBool(byte_level, "use_regex", true)) {
      RETURN_IF_ERROR(AddSplitter(kGpt2Pattern, t));
    }
    return absl::OkStatus();
  }

  static absl::Status LoadModel(const json& m, Tokenizer* t) {
    std::string type = m.value("type", m.contains("merges") ? "BPE" : "");
    if (type != "BPE") return Unsupported("model type", json(type));
    if (!m.value("dropout", json()).is_null()) return Unsupported("BPE dropout", m.at("dropout"));
    if (GetBool(m, "byte_fallback", false)) return Unsupported("BPE byte_fallback", json(true));
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (!IsNullOrEmpty(m, key)) return Unsupported(key, m.at(key));
    }
    std::vector<std::pair<std::string, int32_t>> vocab;
    const json& v = m.at("vocab");
    vocab.reserve(v.size());
    for (auto it = v.begin(); it != v.end(); ++it) {
      vocab.emplace_back(it.key(), it.value().get<int32_t>());
    }
    std::vector<std::pair<std::string, std::string>> merges;
    const json& ms = m.at("merges");
    merges.reserve(ms.size());
    for (const json& merge : ms) {
      if (merge.is_array() && merge.size() == 2) {
        merges.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
        continue;
      }
      const std::string& line = merge.get_ref<const std::string&>();
      size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat("BPE merge \"", line, "\" is not \"a b\""));
      }
      merges.emplace_back(line.substr(0, space), line.substr(space + 1));
    }
    BpeModel::Options options;
    options.ignore_merges = GetBool(m, "ignore_merges", false);
    ASSIGN_OR_RETURN(t->bpe_, BpeModel::Create(std::move(vocab), merges, options));
    t->id_limit_ = t->bpe_->id_limit();
    return absl::OkStatus();
  }

  static absl::Status LoadAddedTokens(const json& tokens, Tokenizer* t) {
    for (const json& a : tokens) {
      AddedToken token;
      token.id = a.at("id").get<int32_t>();
      token.content = a.at("content").get<std::string>();
      token.special = GetBool(a, "special", false);
      token.lstrip = GetBool(a, "lstrip", false);
      token.rstrip = GetBool(a, "rstrip", false);
      token.normalized = GetBool(a, "normalized", !token.special);
      token.single_word = GetBool(a, "single_word", false);
      if (token.id < 0 || token.content.empty() || !IsValidUtf8(token.content)) {
        return absl::InvalidArgumentError(absl::StrCat("bad added token ", a.dump()));
      }
      t->added_.push_back(std::move(token));
    }
    std::vector<const AddedToken*> raw;
    std::vector<const AddedToken*> normalized;
    for (size_t i = 0; i < t->added_.size(); ++i) {
      const AddedToken& token = t->added_[i];
      t->added_by_id_[token.id] = i;
      t->added_by_content_[token.content] = token.id;
      t->id_limit_ = std::max(t->id_limit_, static_cast<size_t>(token.id) + 1);
      if (token.normalized && t->nfc_) {
        // The reference matches these against the normalized text, so normalize the content too.
        std::string storage;
        ASSIGN_OR_RETURN(std::string_view n, NormalizeNfc(token.content, &storage));
        if (n != token.content) {
          return Unsupported("added token whose content NFC changes", json(token.content));
        }
      }
      (token.normalized ? normalized : raw).push_back(&token);
    }
    if (!raw.empty()) {
      ASSIGN_OR_RETURN(t->raw_matcher_, AddedTokenMatcher::Create(raw));
    }
    if (!normalized.empty()) {
      ASSIGN_OR_RETURN(t->normalized_matcher_, AddedTokenMatcher::Create(normalized));
    }
    return absl::OkStatus();
  }

  static absl::Status AppendTemplate(const json& p, Tokenizer* t) {
    const json& special = p.value("special_tokens", json::object());
    bool seen_sequence = false;
    for (const json& piece : p.at("single")) {
      if (piece.contains("Sequence")) {
        if (seen_sequence || piece.at("Sequence").value("id", "A") != "A") {
          return Unsupported("TemplateProcessing single template", p.at("single"));
        }
        seen_sequence = true;
        continue;
      }
      if (!piece.contains("SpecialToken")) return Unsupported("TemplateProcessing piece", piece);
      std::string name = piece.at("SpecialToken").at("id").get<std::string>();
      if (!special.contains(name)) {
        return absl::InvalidArgumentError(
            absl::StrCat("TemplateProcessing: special token ", name, " has no ids"));
      }
      auto& target = seen_sequence ? t->suffix_ids_ : t->prefix_ids_;
      for (const json& id : special.at(name).at("ids")) target.push_back(id.get<int32_t>());
    }
    if (!seen_sequence) return Unsupported("TemplateProcessing without $A", p.at("single"));
    return absl::OkStatus();
  }

  static absl::Status LoadPostProcessor(const json& p, Tokenizer* t) {
    if (p.is_null()) return absl::OkStatus();
    std::string type = p.value("type", "");
    if (type == "ByteLevel") return absl::OkStatus();  // it only trims offsets; ids are untouched
    if (type == "TemplateProcessing") return AppendTemplate(p, t);
    if (type == "Sequence") {
      for (const json& step : p.at("processors")) RETURN_IF_ERROR(LoadPostProcessor(step, t));
      return absl::OkStatus();
    }
    return Unsupported("post_processor", p);
  }

  static absl::Status LoadDecoder(const json& d, Tokenizer* t) {
    if (d.is_null()) return absl::OkStatus();
    if (d.value("type", "") == "ByteLevel") {
      t->byte_level_decoder_ = true;
      return absl::OkStatus();
    }
    return Unsupported("decoder", d);
  }
};

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read tokenizer file ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto tokenizer = FromJson(buffer.str());
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(),
                        absl::StrCat(path, ": ", tokenizer.status().message()));
  }
  return tokenizer;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view text) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  try {
    json root = json::parse(text);
    RETURN_IF_ERROR(TokenizerLoader::Load(root, t.get()));
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer.json: ", e.what()));
  }
  return t;
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(std::string_view text,
                                                       const EncodeOptions& options) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  RETURN_IF_ERROR(EncodeTo(text, options, &ids));
  return ids;
}

absl::Status Tokenizer::EncodeTo(std::string_view text, const EncodeOptions& options,
                                 std::vector<int32_t>* ids) const {
  if (!IsValidUtf8(text)) return absl::InvalidArgumentError("Encode: text is not valid UTF-8");
  if (options.add_special_tokens) ids->insert(ids->end(), prefix_ids_.begin(), prefix_ids_.end());
  if (raw_matcher_) {
    absl::Status status;
    raw_matcher_->Split(text, [&](std::string_view piece, const AddedToken* token) {
      if (!status.ok()) return;
      if (token) {
        ids->push_back(token->id);
      } else {
        status = EncodeOrdinary(piece, ids);
      }
    });
    RETURN_IF_ERROR(status);
  } else if (!text.empty()) {
    RETURN_IF_ERROR(EncodeOrdinary(text, ids));
  }
  if (options.add_special_tokens) ids->insert(ids->end(), suffix_ids_.begin(), suffix_ids_.end());
  return absl::OkStatus();
}

absl::Status Tokenizer::EncodeOrdinary(std::string_view piece, std::vector<int32_t>* ids) const {
  std::string storage;
  if (nfc_) {
    ASSIGN_OR_RETURN(piece, NormalizeNfc(piece, &storage));
  }
  if (!normalized_matcher_) return PreTokenize(0, piece, ids);
  absl::Status status;
  normalized_matcher_->Split(piece, [&](std::string_view part, const AddedToken* token) {
    if (!status.ok()) return;
    if (token) {
      ids->push_back(token->id);
    } else {
      status = PreTokenize(0, part, ids);
    }
  });
  return status;
}

absl::Status Tokenizer::PreTokenize(size_t level, std::string_view piece,
                                    std::vector<int32_t>* ids) const {
  if (level == prefix_space_level_ && add_prefix_space_ && !piece.empty() && piece[0] != ' ') {
    std::string prefixed = absl::StrCat(" ", AV(piece));
    return PreTokenize(level, prefixed, ids);
  }
  if (level == splitters_.size()) {
    bpe_->EncodeWord(piece, ids);
    return absl::OkStatus();
  }
  absl::Status status;
  RETURN_IF_ERROR(splitters_[level]->Split(piece, [&](std::string_view part) {
    if (status.ok()) status = PreTokenize(level + 1, part, ids);
  }));
  return status;
}

std::string Tokenizer::Decode(absl::Span<const int32_t> ids, const DecodeOptions& options) const {
  std::string out;
  std::string pending;  // model-token bytes not yet converted to text
  std::vector<std::string> words;  // without a decoder: token strings joined by spaces
  auto flush = [&] {
    if (!pending.empty()) {
      AppendUtf8Lossy(pending, &out);
      pending.clear();
    }
  };
  for (int32_t id : ids) {
    if (auto it = added_by_id_.find(id); it != added_by_id_.end()) {
      const AddedToken& token = added_[it->second];
      if (options.skip_special_tokens && token.special) continue;
      if (byte_level_decoder_) {
        flush();
        out.append(token.content);
      } else {
        words.push_back(token.content);
      }
      continue;
    }
    if (!byte_level_decoder_) {
      if (auto token = bpe_->IdToToken(id)) words.push_back(std::move(*token));
      continue;
    }
    if (const std::string* bytes = bpe_->IdToBytes(id)) pending.append(*bytes);
  }
  flush();
  if (!byte_level_decoder_) {
    for (size_t i = 0; i < words.size(); ++i) absl::StrAppend(&out, i ? " " : "", words[i]);
  }
  return out;
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  if (auto it = added_by_content_.find(AV(token)); it != added_by_content_.end()) return it->second;
  return bpe_->TokenToId(token);
}

std::optional<std::string> Tokenizer::IdToToken(int32_t id) const {
  if (auto it = added_by_id_.find(id); it != added_by_id_.end()) return added_[it->second].content;
  return bpe_->IdToToken(id);
}

bool Tokenizer::IsSpecial(int32_t id) const {
  auto it = added_by_id_.find(id);
  return it != added_by_id_.end() && added_[it->second].special;
}

}  // namespace temper::tokenizer
