// Parity with the reference: tests/tokenizer/reference_encode.mjs encodes a corpus (edge cases,
// seeded random Unicode mixes, benchmark prompts, real Rust crates) with @huggingface/tokenizers
// on the real Qwen 3 and Llama 3 tokenizer.json files; every id here must match, and decoding
// must give the reference's text and round-trip the (normalized) input.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "libs/tokenizer/nfc.h"
#include "libs/tokenizer/tokenizer.h"

namespace temper::tokenizer {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class ParityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string src = Env("TEMPER_SOURCE_DIR", ".");
    const std::string bin = Env("TEMPER_BINARY_DIR", "/tmp");
    if (std::system("command -v node >/dev/null 2>&1") != 0) {
      skip_reason_ = new std::string("node is not on PATH (scripts/setup.sh installs it)");
      return;
    }
    if (!fs::exists(src + "/node_modules/@huggingface/tokenizers/package.json")) {
      skip_reason_ = new std::string("node_modules missing: run scripts/setup.sh (npm ci)");
      return;
    }
    const std::string out = bin + "/tokenizer_parity_expected.json";
    const std::string cmd = "node " + ShellQuote(src + "/tests/tokenizer/reference_encode.mjs") +
                            " --out " + ShellQuote(out) + " --max-bytes " +
                            Env("TEMPER_TOKENIZER_PARITY_MAX_BYTES", "0");
    int rc = std::system(cmd.c_str());
    if (rc != 0) {
      error_ = new std::string("reference script failed (exit " + std::to_string(rc) + "): " + cmd);
      return;
    }
    std::ifstream in(out);
    expected_ = new json(json::parse(in));
  }
  static void TearDownTestSuite() {
    delete expected_;
    delete skip_reason_;
    delete error_;
    expected_ = nullptr;
    skip_reason_ = error_ = nullptr;
  }

  void CheckTokenizer(const std::string& name) {
    if (skip_reason_) GTEST_SKIP() << *skip_reason_;
    ASSERT_EQ(error_, nullptr) << *error_;
    const json* entry = nullptr;
    for (const json& t : (*expected_)["tokenizers"]) {
      if (t["name"] == name) entry = &t;
    }
    ASSERT_NE(entry, nullptr) << name;
    auto tokenizer = Tokenizer::FromFile((*entry)["path"].get<std::string>());
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    const Tokenizer& t = **tokenizer;
    const json& texts = (*expected_)["texts"];
    const json& ids_no_special = (*entry)["ids_no_special"];
    size_t tokens = 0, bytes = 0, id_mismatches = 0, decode_mismatches = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
      const std::string name_i = texts[i]["name"].get<std::string>();
      const std::string& text = texts[i]["text"].get_ref<const std::string&>();
      const auto expected = (*entry)["ids"][i].get<std::vector<int32_t>>();
      auto ids = t.Encode(text);
      ASSERT_TRUE(ids.ok()) << name_i << ": " << ids.status();
      tokens += ids->size();
      bytes += text.size();
      if (*ids != expected) {
        size_t k = 0;
        while (k < ids->size() && k < expected.size() && (*ids)[k] == expected[k]) ++k;
        auto around = [&](const std::vector<int32_t>& v) {
          std::string s;
          for (size_t j = k; j < v.size() && j < k + 6; ++j) s += std::to_string(v[j]) + " ";
          return s;
        };
        if (++id_mismatches <= 10) {
          ADD_FAILURE() << name << " " << name_i << ": first difference at token " << k
                        << " (decoded so far: \""
                        << t.Decode(std::vector<int32_t>(expected.begin(), expected.begin() + k))
                                   .substr(0, 200)
                        << "\")\n  ours:      " << around(*ids) << "\n  reference: " << around(expected);
        }
        continue;
      }
      if (ids_no_special.contains(std::to_string(i))) {
        auto plain = t.Encode(text, {.add_special_tokens = false});
        ASSERT_TRUE(plain.ok());
        EXPECT_EQ(*plain, ids_no_special[std::to_string(i)].get<std::vector<int32_t>>()) << name_i;
      }
      std::string decoded = t.Decode(*ids);
      std::string decoded_skip = t.Decode(*ids, {.skip_special_tokens = true});
      std::string storage;
      auto normalized = NormalizeNfc(text, &storage);
      ASSERT_TRUE(normalized.ok());
      const std::string round_trip(name == "qwen3" ? *normalized : std::string_view(text));
      if (decoded != (*entry)["decoded"][i].get<std::string>() ||
          decoded_skip != (*entry)["decoded_skip_special"][i].get<std::string>() ||
          decoded != round_trip) {
        if (++decode_mismatches <= 10) {
          ADD_FAILURE() << name << " " << name_i << ": decode differs\n  ours: \""
                        << decoded.substr(0, 200) << "\"\n  reference: \""
                        << (*entry)["decoded"][i].get<std::string>().substr(0, 200) << "\"";
        }
      }
    }
    EXPECT_EQ(id_mismatches, 0u);
    EXPECT_EQ(decode_mismatches, 0u);
    std::printf("%s: %zu texts, %zu bytes, %zu tokens; %zu id mismatches, %zu decode mismatches\n",
                name.c_str(), texts.size(), bytes, tokens, id_mismatches, decode_mismatches);
  }

  static json* expected_;
  static std::string* skip_reason_;
  static std::string* error_;
};

json* ParityTest::expected_ = nullptr;
std::string* ParityTest::skip_reason_ = nullptr;
std::string* ParityTest::error_ = nullptr;

TEST_F(ParityTest, Qwen3IdsAndDecodeMatchReference) { CheckTokenizer("qwen3"); }
TEST_F(ParityTest, Llama3IdsAndDecodeMatchReference) { CheckTokenizer("llama3"); }

}  // namespace
}  // namespace temper::tokenizer
