// temper-generate: local sampling from a Hugging Face model directory (+ an optional PEFT adapter)
// with libs/model. Usage and flags: libs/model/tools/README.md.
//
// Text prompts need the model's tokenizer.json and a build with libs/tokenizer
// (TEMPER_GENERATE_WITH_TOKENIZER); token-id prompts (--prompt-ids, or "prompt_ids" in a JSONL
// line) work in every build. Output streams to stdout as tokens arrive: decoded text when there
// is a tokenizer, else space-separated token ids. --json prints one JSON object per prompt instead.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "libs/common/status.h"
#include "libs/model/generate.h"
#include "libs/model/hf_checkpoint.h"
#include "libs/model/path_util.h"
#include "libs/model/peft_adapter.h"
#include "libs/model/torch_util.h"

#if defined(TEMPER_GENERATE_WITH_TOKENIZER)
#include "libs/tokenizer/tokenizer.h"
#endif

namespace temper::model {
namespace {

constexpr char kUsage[] =
    "usage: temper-generate --model DIR [--adapter DIR] [--nf4] [--dtype float32|bfloat16]\n"
    "         (--prompt TEXT | --prompt-ids 1,2,3 | --prompts FILE.jsonl)\n"
    "         [--max-new-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed S]\n"
    "         [--stop STR]... [--ignore-eos] [--device cpu|cuda] [--json]\n";

struct Args {
  std::string model;
  std::string adapter;
  bool nf4 = false;
  std::string dtype;  // default: bfloat16 on cuda, float32 on cpu
  std::optional<std::string> prompt;
  std::optional<std::string> prompt_ids;
  std::string prompts_file;
  int64_t max_new_tokens = 256;
  double temperature = 0.0;
  double top_p = 1.0;
  int64_t top_k = 0;
  uint64_t seed = 0;
  std::vector<std::string> stops;
  bool ignore_eos = false;
  std::string device = "cpu";
  bool json = false;
};

absl::StatusOr<std::vector<int32_t>> ParseIds(absl::string_view text) {
  std::vector<int32_t> ids;
  for (absl::string_view piece : absl::StrSplit(text, absl::ByAnyChar(", "), absl::SkipEmpty())) {
    int32_t id = 0;
    if (!absl::SimpleAtoi(piece, &id)) return absl::InvalidArgumentError(absl::StrCat("bad token id '", piece, "'"));
    ids.push_back(id);
  }
  if (ids.empty()) return absl::InvalidArgumentError("empty --prompt-ids");
  return ids;
}

absl::StatusOr<Args> ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> absl::StatusOr<std::string> {
      if (i + 1 >= argc) return absl::InvalidArgumentError(flag + " needs a value");
      return std::string(argv[++i]);
    };
    auto number = [&](auto* out) -> absl::Status {
      ASSIGN_OR_RETURN(std::string v, value());
      bool ok = false;
      if constexpr (std::is_same_v<std::remove_pointer_t<decltype(out)>, double>) {
        ok = absl::SimpleAtod(v, out);
      } else {
        ok = absl::SimpleAtoi(v, out);
      }
      return ok ? absl::OkStatus() : absl::InvalidArgumentError(absl::StrCat(flag, ": bad number '", v, "'"));
    };
    if (flag == "--model") {
      ASSIGN_OR_RETURN(a.model, value());
    } else if (flag == "--adapter") {
      ASSIGN_OR_RETURN(a.adapter, value());
    } else if (flag == "--nf4") {
      a.nf4 = true;
    } else if (flag == "--dtype") {
      ASSIGN_OR_RETURN(a.dtype, value());
    } else if (flag == "--prompt") {
      ASSIGN_OR_RETURN(a.prompt, value());
    } else if (flag == "--prompt-ids") {
      ASSIGN_OR_RETURN(a.prompt_ids, value());
    } else if (flag == "--prompts") {
      ASSIGN_OR_RETURN(a.prompts_file, value());
    } else if (flag == "--max-new-tokens") {
      RETURN_IF_ERROR(number(&a.max_new_tokens));
    } else if (flag == "--temperature") {
      RETURN_IF_ERROR(number(&a.temperature));
    } else if (flag == "--top-p") {
      RETURN_IF_ERROR(number(&a.top_p));
    } else if (flag == "--top-k") {
      RETURN_IF_ERROR(number(&a.top_k));
    } else if (flag == "--seed") {
      RETURN_IF_ERROR(number(&a.seed));
    } else if (flag == "--stop") {
      ASSIGN_OR_RETURN(std::string s, value());
      a.stops.push_back(s);
    } else if (flag == "--ignore-eos") {
      a.ignore_eos = true;
    } else if (flag == "--device") {
      ASSIGN_OR_RETURN(a.device, value());
    } else if (flag == "--json") {
      a.json = true;
    } else if (flag == "--help" || flag == "-h") {
      return absl::CancelledError("help");
    } else {
      return absl::InvalidArgumentError("unknown flag " + flag);
    }
  }
  if (a.model.empty()) return absl::InvalidArgumentError("--model is required");
  const int sources = a.prompt.has_value() + a.prompt_ids.has_value() + !a.prompts_file.empty();
  if (sources != 1) return absl::InvalidArgumentError("give exactly one of --prompt, --prompt-ids, --prompts");
  if (a.device != "cpu" && a.device != "cuda") return absl::InvalidArgumentError("--device is cpu or cuda");
  return a;
}

// One prompt: its text (when given as text) and its token ids.
struct Prompt {
  std::optional<std::string> text;
  std::vector<int32_t> ids;
};

// Text <-> ids. Without a tokenizer, text prompts and stop strings are errors and output is ids.
class Codec {
 public:
  static absl::StatusOr<Codec> Open(const std::string& model_dir) {
    Codec c;
#if defined(TEMPER_GENERATE_WITH_TOKENIZER)
    const std::string path = JoinPath(model_dir, "tokenizer.json");
    if (PathExists(path)) {
      ASSIGN_OR_RETURN(std::unique_ptr<tokenizer::Tokenizer> tok, tokenizer::Tokenizer::FromFile(path));
      c.tokenizer_ = std::shared_ptr<tokenizer::Tokenizer>(std::move(tok));
    }
#else
    (void)model_dir;
#endif
    return c;
  }

  bool has_tokenizer() const {
#if defined(TEMPER_GENERATE_WITH_TOKENIZER)
    return tokenizer_ != nullptr;
#else
    return false;
#endif
  }

  absl::StatusOr<std::vector<int32_t>> Encode(const std::string& text) const {
#if defined(TEMPER_GENERATE_WITH_TOKENIZER)
    if (tokenizer_ != nullptr) return tokenizer_->Encode(text);
#endif
    return absl::FailedPreconditionError(
        "text prompts need the model's tokenizer.json and a temper-generate built with libs/tokenizer; "
        "use --prompt-ids");
  }

  std::string Decode(std::span<const int32_t> ids) const {
#if defined(TEMPER_GENERATE_WITH_TOKENIZER)
    if (tokenizer_ != nullptr) return tokenizer_->Decode(absl::MakeConstSpan(ids.data(), ids.size()));
#endif
    std::string out;
    for (size_t i = 0; i < ids.size(); ++i) absl::StrAppend(&out, i ? " " : "", ids[i]);
    return out;
  }

 private:
#if defined(TEMPER_GENERATE_WITH_TOKENIZER)
  std::shared_ptr<tokenizer::Tokenizer> tokenizer_;
#endif
};

absl::StatusOr<std::vector<Prompt>> ReadPrompts(const Args& a, const Codec& codec) {
  std::vector<Prompt> prompts;
  if (a.prompt_ids.has_value()) {
    ASSIGN_OR_RETURN(std::vector<int32_t> ids, ParseIds(*a.prompt_ids));
    prompts.push_back({std::nullopt, std::move(ids)});
  } else if (a.prompt.has_value()) {
    ASSIGN_OR_RETURN(std::vector<int32_t> ids, codec.Encode(*a.prompt));
    prompts.push_back({*a.prompt, std::move(ids)});
  } else {
    std::ifstream in(a.prompts_file);
    if (!in) return absl::NotFoundError("cannot read " + a.prompts_file);
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (absl::StripAsciiWhitespace(line).empty()) continue;
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      const std::string where = absl::StrCat(a.prompts_file, ":", n);
      if (j.is_string()) {
        ASSIGN_OR_RETURN(std::vector<int32_t> ids, codec.Encode(j.get<std::string>()));
        prompts.push_back({j.get<std::string>(), std::move(ids)});
      } else if (j.is_object() && j.contains("prompt_ids") && j["prompt_ids"].is_array()) {
        Prompt p;
        for (const auto& v : j["prompt_ids"]) {
          if (!v.is_number_integer()) return absl::InvalidArgumentError(where + ": prompt_ids holds a non-integer");
          p.ids.push_back(v.get<int32_t>());
        }
        prompts.push_back(std::move(p));
      } else if (j.is_object() && j.contains("prompt") && j["prompt"].is_string()) {
        ASSIGN_OR_RETURN(std::vector<int32_t> ids, codec.Encode(j["prompt"].get<std::string>()));
        prompts.push_back({j["prompt"].get<std::string>(), std::move(ids)});
      } else {
        return absl::InvalidArgumentError(
            where + ": expected a JSON string or an object with \"prompt\" or \"prompt_ids\"");
      }
    }
  }
  for (const Prompt& p : prompts) {
    if (p.ids.empty()) return absl::InvalidArgumentError("a prompt encodes to no tokens");
  }
  return prompts;
}

// EOS ids from config.json and generation_config.json (an int or a list there).
std::vector<int32_t> EosIds(const std::string& dir, const ModelConfig& config) {
  std::vector<int32_t> eos(config.eos_token_ids.begin(), config.eos_token_ids.end());
  std::ifstream in(JoinPath(dir, "generation_config.json"));
  if (in) {
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("eos_token_id")) {
      const nlohmann::json& e = j["eos_token_id"];
      auto add = [&](const nlohmann::json& v) {
        if (v.is_number_integer() && std::find(eos.begin(), eos.end(), v.get<int32_t>()) == eos.end()) {
          eos.push_back(v.get<int32_t>());
        }
      };
      if (e.is_array()) {
        for (const auto& v : e) add(v);
      } else {
        add(e);
      }
    }
  }
  return eos;
}

const char* FinishName(FinishReason r) {
  switch (r) {
    case FinishReason::kLength: return "length";
    case FinishReason::kEos: return "eos";
    case FinishReason::kStopSequence: return "stop_sequence";
    case FinishReason::kStopString: return "stop_string";
    case FinishReason::kCallback: return "callback";
  }
  return "unknown";
}

// Writes the decoded text of `tokens` incrementally: what is new since the last call, holding
// back a trailing U+FFFD (an incomplete UTF-8 sequence that later tokens complete).
class Streamer {
 public:
  explicit Streamer(const Codec& codec) : codec_(codec) {}
  void Add(int32_t token) {
    tokens_.push_back(token);
    if (!codec_.has_tokenizer()) {
      std::printf("%s%d", tokens_.size() > 1 ? " " : "", token);
      std::fflush(stdout);
      return;
    }
    const std::string text = codec_.Decode(tokens_);
    static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
    if (text.size() >= kReplacement.size() && text.compare(text.size() - 3, 3, kReplacement) == 0) return;
    if (text.size() > written_ && text.compare(0, written_, text, 0, written_) == 0) {
      std::fwrite(text.data() + written_, 1, text.size() - written_, stdout);
      std::fflush(stdout);
      written_ = text.size();
    }
  }
  void Finish() {
    if (codec_.has_tokenizer()) {
      const std::string text = codec_.Decode(tokens_);
      if (text.size() > written_) std::fwrite(text.data() + written_, 1, text.size() - written_, stdout);
    }
    std::printf("\n");
    std::fflush(stdout);
  }

 private:
  const Codec& codec_;
  std::vector<int32_t> tokens_;
  size_t written_ = 0;
};

absl::Status Run(const Args& a) {
  LoadOptions lo;
  lo.device = a.device == "cuda" ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (a.device == "cuda" && !torch::cuda::is_available()) return absl::FailedPreconditionError("--device cuda: no CUDA device");
  const std::string dtype = !a.dtype.empty() ? a.dtype : (a.device == "cuda" ? "bfloat16" : "float32");
  ASSIGN_OR_RETURN(lo.dtype, ParseFloatDtype(dtype));
  lo.nf4 = a.nf4;
  ASSIGN_OR_RETURN(Codec codec, Codec::Open(a.model));
  ASSIGN_OR_RETURN(std::vector<Prompt> prompts, ReadPrompts(a, codec));
  if (!a.stops.empty() && !codec.has_tokenizer()) {
    return absl::FailedPreconditionError("--stop needs the model's tokenizer.json and libs/tokenizer");
  }
  ASSIGN_OR_RETURN(Transformer model, LoadHfModel(a.model, lo));
  if (!a.adapter.empty()) RETURN_IF_ERROR(LoadAdapter(model, a.adapter));

  SamplingOptions o;
  o.max_new_tokens = a.max_new_tokens;
  o.temperature = a.temperature;
  o.top_p = a.top_p;
  o.top_k = a.top_k;
  o.stop_strings = a.stops;
  if (!a.ignore_eos) o.eos_token_ids = EosIds(a.model, model->config());
  if (!a.stops.empty()) o.decode = [&codec](std::span<const int32_t> ids) { return codec.Decode(ids); };

  for (size_t i = 0; i < prompts.size(); ++i) {
    o.seed = a.seed + i;  // prompt i samples as sequence 0 of seed + i
    std::optional<Streamer> streamer;
    if (!a.json) streamer.emplace(codec);
    TokenCallback on_token;
    if (streamer.has_value()) on_token = [&](size_t, int32_t t) { streamer->Add(t); return true; };
    ASSIGN_OR_RETURN(std::vector<Generation> out, Generate(model, {prompts[i].ids}, o, on_token));
    const Generation& g = out[0];
    if (streamer.has_value()) {
      streamer->Finish();
      continue;
    }
    nlohmann::json j;
    j["index"] = i;
    if (prompts[i].text.has_value()) j["prompt"] = *prompts[i].text;
    j["prompt_ids"] = prompts[i].ids;
    j["tokens"] = g.tokens;
    if (codec.has_tokenizer()) j["text"] = codec.Decode(g.tokens);
    j["finish"] = FinishName(g.finish);
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace temper::model

int main(int argc, char** argv) {
  auto args = temper::model::ParseArgs(argc, argv);
  if (!args.ok()) {
    if (absl::IsCancelled(args.status())) {
      std::fputs(temper::model::kUsage, stdout);
      return 0;
    }
    std::fprintf(stderr, "temper-generate: %s\n%s", std::string(args.status().message()).c_str(),
                 temper::model::kUsage);
    return 2;
  }
  absl::Status result;
  const absl::Status caught =
      temper::model::CatchTorch("temper-generate", [&] { result = temper::model::Run(*args); });
  if (!caught.ok()) result = caught;
  if (!result.ok()) {
    std::fprintf(stderr, "temper-generate: %s\n", result.ToString().c_str());
    return 1;
  }
  return 0;
}
