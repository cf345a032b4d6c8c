// temper-generate end to end on the tiny fixture model (tests/fixtures/model/llama): greedy
// output, base and + the PEFT adapter, equals what transformers.generate produced (the
// gen_tokens_* tensors of reference.safetensors, as model_fixture_test reads them).
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "libs/model/path_util.h"
#include "libs/model/safetensors.h"
#include "libs/model/torch_util.h"

namespace temper::model {
namespace {

std::string FixtureDir() {
  const char* src = std::getenv("TEMPER_SOURCE_DIR");
  return JoinPath(src != nullptr ? src : ".", "tests/fixtures/model/llama");
}

// Runs `args` through the shell; returns stdout and sets *rc.
std::string RunTool(const std::string& args, int* rc) {
  const std::string cmd = absl::StrCat("'", TEMPER_GENERATE_BIN, "' ", args, " 2>&1");
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) {
    *rc = -1;
    return {};
  }
  std::string out;
  std::array<char, 4096> buf;
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  *rc = pclose(p);
  return out;
}

std::vector<int32_t> Ints(const SafetensorsFile& f, const std::string& name) {
  const TensorView* v = f.Find(name);
  if (v == nullptr) return {};
  torch::Tensor t = ToTorch(*v).value().to(torch::kInt64).contiguous();
  return std::vector<int32_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
}

class GenerateToolTest : public ::testing::TestWithParam<bool> {};

TEST_P(GenerateToolTest, GreedyMatchesTransformers) {
  const bool lora = GetParam();
  const std::string dir = FixtureDir();
  auto ref = SafetensorsFile::Open(JoinPath(dir, "reference.safetensors"));
  if (!ref.ok() || (*ref)->Find("gen_prompt_0") == nullptr) GTEST_SKIP() << dir << " has no greedy fixtures";
  int checked = 0;
  for (int i = 0; (*ref)->Find(absl::StrCat("gen_prompt_", i)) != nullptr; ++i) {
    const std::vector<int32_t> prompt = Ints(**ref, absl::StrCat("gen_prompt_", i));
    const std::vector<int32_t> want = Ints(**ref, absl::StrCat(lora ? "gen_tokens_lora_" : "gen_tokens_", i));
    const std::string common =
        absl::StrCat("--model '", dir, "'", lora ? absl::StrCat(" --adapter '", dir, "/adapter'") : "",
                     " --prompt-ids ", absl::StrJoin(prompt, ","), " --max-new-tokens ", want.size(),
                     " --temperature 0 --ignore-eos");
    int rc = 0;
    // --json: one object per prompt.
    const std::string json_out = RunTool(common + " --json", &rc);
    ASSERT_EQ(rc, 0) << json_out;
    const nlohmann::json j = nlohmann::json::parse(json_out, nullptr, false);
    ASSERT_TRUE(j.is_object()) << json_out;
    EXPECT_EQ(j["tokens"].get<std::vector<int32_t>>(), want) << "prompt " << i << (lora ? " + LoRA" : "");
    EXPECT_EQ(j["prompt_ids"].get<std::vector<int32_t>>(), prompt);
    // Streaming (no tokenizer: space-separated ids on one line).
    const std::string streamed = RunTool(common, &rc);
    ASSERT_EQ(rc, 0) << streamed;
    EXPECT_EQ(streamed, absl::StrJoin(want, " ") + "\n") << "prompt " << i;
    // Without --ignore-eos the output ends at the config's EOS (id 2), kept; transformers' fixture
    // was generated without stopping, so its tokens are cut there.
    std::vector<int32_t> until_eos = want;
    if (auto it = std::find(until_eos.begin(), until_eos.end(), 2); it != until_eos.end()) {
      until_eos.erase(it + 1, until_eos.end());
    }
    const std::string eos_out = RunTool(absl::StrReplaceAll(common, {{" --ignore-eos", ""}}) + " --json", &rc);
    ASSERT_EQ(rc, 0) << eos_out;
    const nlohmann::json e = nlohmann::json::parse(eos_out, nullptr, false);
    ASSERT_TRUE(e.is_object()) << eos_out;
    EXPECT_EQ(e["tokens"].get<std::vector<int32_t>>(), until_eos) << "prompt " << i;
    EXPECT_EQ(e["finish"], until_eos.size() < want.size() || (!want.empty() && want.back() == 2) ? "eos" : "length");
    ++checked;
  }
  EXPECT_GT(checked, 0);
  std::printf("temper-generate%s: %d prompts give transformers' greedy tokens\n", lora ? " + LoRA" : "", checked);
}

INSTANTIATE_TEST_SUITE_P(Adapter, GenerateToolTest, ::testing::Bool());

TEST(GenerateToolArgsTest, RejectsBadUsage) {
  int rc = 0;
  EXPECT_NE(RunTool("--prompt-ids 1,2", &rc).find("--model is required"), std::string::npos);
  EXPECT_NE(rc, 0);
  const std::string dir = FixtureDir();
  const std::string out = RunTool(absl::StrCat("--model '", dir, "' --prompt hello"), &rc);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("tokenizer"), std::string::npos) << out;  // the fixture has no tokenizer.json
}

}  // namespace
}  // namespace temper::model
