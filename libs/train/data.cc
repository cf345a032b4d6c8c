#include "libs/train/data.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace temper::train {
namespace {

absl::StatusOr<std::vector<int32_t>> Field(const nlohmann::json& j, const std::string& text_key,
                                           const std::string& ids_key, const TokenizeFn& tokenize,
                                           const std::string& where) {
  if (j.contains(ids_key)) {
    const auto& a = j[ids_key];
    if (!a.is_array()) return absl::InvalidArgumentError(absl::StrCat(where, ": \"", ids_key, "\" is not an array"));
    std::vector<int32_t> ids;
    ids.reserve(a.size());
    for (const auto& v : a) {
      if (!v.is_number_integer()) return absl::InvalidArgumentError(absl::StrCat(where, ": \"", ids_key, "\" holds a non-integer"));
      ids.push_back(v.get<int32_t>());
    }
    return ids;
  }
  if (!j.contains(text_key)) return absl::InvalidArgumentError(absl::StrCat(where, ": no \"", text_key, "\" or \"", ids_key, "\""));
  if (!j[text_key].is_string()) return absl::InvalidArgumentError(absl::StrCat(where, ": \"", text_key, "\" is not a string"));
  if (!tokenize) return absl::InvalidArgumentError(absl::StrCat(where, ": text given but no tokenizer"));
  auto ids = tokenize(j[text_key].get<std::string>());
  if (!ids.ok()) return absl::Status(ids.status().code(), absl::StrCat(where, ": tokenizing \"", text_key, "\": ", ids.status().message()));
  return ids;
}

}  // namespace

absl::StatusOr<std::vector<Example>> ParseExamplesJsonl(std::string_view text, const TokenizeFn& tokenize,
                                                        const DataOptions& options, const std::string& source) {
  std::vector<Example> out;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const std::string where = absl::StrCat(source, ":", line_no);
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return absl::InvalidArgumentError(absl::StrCat(where, ": not a JSON object"));
    Example e;
    ASSIGN_OR_RETURN(e.prompt, Field(j, "prompt", "prompt_ids", tokenize, where));
    ASSIGN_OR_RETURN(e.completion, Field(j, "completion", "completion_ids", tokenize, where));
    if (j.contains("weight")) {
      if (!j["weight"].is_number()) return absl::InvalidArgumentError(absl::StrCat(where, ": \"weight\" is not a number"));
      double w = j["weight"].get<double>();
      if (!std::isfinite(w) || w < 0) return absl::InvalidArgumentError(absl::StrCat(where, ": weight ", w, " is negative or not finite"));
      e.weight = static_cast<float>(w);
    }
    if (options.bos_id) e.prompt.insert(e.prompt.begin(), *options.bos_id);
    if (options.eos_id) e.completion.push_back(*options.eos_id);
    if (e.completion.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": empty completion"));
    if (options.vocab_size > 0) {
      for (const auto* seq : {&e.prompt, &e.completion}) {
        for (int32_t id : *seq) {
          if (id < 0 || id >= options.vocab_size)
            return absl::InvalidArgumentError(absl::StrCat(where, ": token id ", id, " outside the vocabulary of ", options.vocab_size));
        }
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

absl::StatusOr<std::vector<Example>> ReadExamplesJsonl(const std::string& path, const TokenizeFn& tokenize,
                                                       const DataOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read training data ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseExamplesJsonl(ss.str(), tokenize, options, path);
}

TokenizeFn ByteTokenizer() {
  return [](std::string_view text) -> absl::StatusOr<std::vector<int32_t>> {
    std::vector<int32_t> ids;
    ids.reserve(text.size());
    for (char c : text) ids.push_back(static_cast<int32_t>(static_cast<unsigned char>(c)));
    return ids;
  };
}

std::string ByteDetokenize(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) {
    if (id >= 0 && id < 256) s.push_back(static_cast<char>(id));
  }
  return s;
}

}  // namespace temper::train
