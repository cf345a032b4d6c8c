// Our logits against transformers' (+ PEFT's) on the tiny random models that
// scripts/gpu/make_model_fixtures.py writes to tests/fixtures/model/<name>/. Skips, naming the
// missing directory, until the fixtures exist. Tolerances (docs/model.md):
//   float32:  max |ours - reference| <= 1e-4
//   bfloat16: max |ours - reference| <= 0.02 + 0.02 |reference|, mean <= 5e-3 (different
//             kernels round bf16 intermediates differently; 2^-8 relative per rounding)
#include <cstdio>
#include <cstdlib>

#include <gtest/gtest.h>

#include "libs/model/generate.h"
#include "libs/model/hf_checkpoint.h"
#include "libs/model/nf4.h"
#include "libs/model/path_util.h"
#include "libs/model/peft_adapter.h"
#include "libs/model/torch_util.h"

namespace temper::model {
namespace {

std::string FixtureDir(const std::string& name) {
  const char* src = std::getenv("TEMPER_SOURCE_DIR");
  return JoinPath(JoinPath(src != nullptr ? src : ".", "tests/fixtures/model"), name);
}

torch::Tensor Load(const SafetensorsFile& f, const std::string& name) {
  const TensorView* v = f.Find(name);
  if (v == nullptr) {
    ADD_FAILURE() << "reference.safetensors lacks " << name;
    return {};
  }
  return ToTorch(*v).value();
}

struct Err {
  float max = 0, mean = 0;
};

Err Distance(const torch::Tensor& a, const torch::Tensor& b) {
  torch::Tensor d = (a.to(torch::kFloat32) - b.to(torch::kFloat32)).abs();
  return {d.max().item<float>(), d.mean().item<float>()};
}

// float32: our logits against transformers' float32 logits, max |diff| <= 1e-4.
void CompareFp32(const torch::Tensor& ours, const torch::Tensor& ref, const std::string& what) {
  ASSERT_EQ(ours.sizes(), ref.sizes()) << what;
  const Err e = Distance(ours, ref);
  std::printf("%s: max |diff| %.3g, mean %.3g (reference max |logit| %.3g)\n", what.c_str(), e.max,
              e.mean, ref.abs().max().item<float>());
  EXPECT_LE(e.max, 1e-4f) << what;
}

// bfloat16: two bf16 implementations round intermediates at different points (matmul blocking,
// fused vs separate kernels), so comparing our bf16 logits with transformers' bf16 logits measures
// two independent rounding errors, not ours. Both are instead measured against transformers'
// float32 logits of the same weights and inputs: ours must be about as close to them as
// transformers' own bf16 run is,
//   mean |ours_bf16 - hf_fp32| <= kBf16MeanFactor * mean |hf_bf16 - hf_fp32| + 1e-3
//   max  |ours_bf16 - hf_fp32| <= kBf16MaxFactor  * max  |hf_bf16 - hf_fp32| + 1e-2
// The mean is the stable statistic (40 x 2 x 256 logits); the max is one draw of the tail, hence
// its wider factor. A real bug (a wrong cast, a missing bias, a norm in the wrong dtype) moves the
// mean by far more than 1.5x: logits are O(1) while bf16 rounding noise is O(1e-2).
constexpr float kBf16MeanFactor = 1.5f;
constexpr float kBf16MaxFactor = 2.0f;

void CompareBf16(const torch::Tensor& ours, const torch::Tensor& hf_bf16, const torch::Tensor& hf_fp32,
                 const std::string& what) {
  ASSERT_EQ(ours.sizes(), hf_fp32.sizes()) << what;
  const Err o = Distance(ours, hf_fp32), h = Distance(hf_bf16, hf_fp32), oh = Distance(ours, hf_bf16);
  std::printf("%s: |ours - hf fp32| max %.3g mean %.3g; |hf bf16 - hf fp32| max %.3g mean %.3g "
              "(ratio max %.2f mean %.2f); |ours - hf bf16| max %.3g mean %.3g\n",
              what.c_str(), o.max, o.mean, h.max, h.mean, o.max / h.max, o.mean / h.mean, oh.max, oh.mean);
  EXPECT_LE(o.mean, kBf16MeanFactor * h.mean + 1e-3f) << what;
  EXPECT_LE(o.max, kBf16MaxFactor * h.max + 1e-2f) << what;
}

class FixtureTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureTest, LogitsMatchTransformers) {
  const std::string dir = FixtureDir(GetParam());
  if (!PathExists(JoinPath(dir, "reference.safetensors"))) {
    GTEST_SKIP() << dir << " is absent: run scripts/gpu/make_model_fixtures.py (docs/model.md)";
  }
  auto ref = SafetensorsFile::Open(JoinPath(dir, "reference.safetensors"));
  ASSERT_TRUE(ref.ok()) << ref.status();
  torch::Tensor ids = Load(**ref, "input_ids").to(torch::kInt64);
  torch::NoGradGuard no_grad;
  for (const bool bf16 : {false, true}) {
    LoadOptions opts;
    opts.dtype = bf16 ? torch::kBFloat16 : torch::kFloat32;
    auto m = LoadHfModel(dir, opts);
    ASSERT_TRUE(m.ok()) << m.status();
    const std::string suffix = bf16 ? "bf16" : "fp32";
    for (const bool lora : {false, true}) {
      if (lora) {
        ASSERT_TRUE(LoadAdapter(*m, JoinPath(dir, "adapter")).ok());
      }
      const std::string tail = lora ? "_lora" : "";
      const std::string what = GetParam() + " " + suffix + (lora ? " + LoRA" : "");
      torch::Tensor ours = (*m)->forward(ids);
      if (bf16) {
        CompareBf16(ours, Load(**ref, "logits_bf16" + tail), Load(**ref, "logits_fp32" + tail), what);
      } else {
        CompareFp32(ours, Load(**ref, "logits_fp32" + tail), what);
      }
    }
  }
}

std::vector<int32_t> Ints(const torch::Tensor& t) {
  torch::Tensor c = t.to(torch::kInt64).contiguous();
  return std::vector<int32_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// Our greedy decoding (KV cache, float32) gives the tokens transformers.generate gave, prompt by
// prompt, on CPU and (when present) CUDA, for the base model and with the PEFT adapter. The fixture
// holds what transformers produced; max_new_tokens is its length (it would be shorter only had
// transformers stopped at an EOS token, which it then ends with).
TEST_P(FixtureTest, GreedyGenerationMatchesTransformers) {
  const std::string dir = FixtureDir(GetParam());
  if (!PathExists(JoinPath(dir, "reference.safetensors"))) GTEST_SKIP() << dir << " is absent";
  auto ref = SafetensorsFile::Open(JoinPath(dir, "reference.safetensors"));
  ASSERT_TRUE(ref.ok()) << ref.status();
  if ((*ref)->Find("gen_prompt_0") == nullptr) {
    GTEST_SKIP() << "reference.safetensors predates greedy generation fixtures: rerun make_model_fixtures.py";
  }
  std::vector<torch::Device> devices = {torch::kCPU};
  if (torch::cuda::is_available()) devices.emplace_back(torch::kCUDA, 0);
  for (const torch::Device& device : devices) {
    LoadOptions opts;
    opts.device = device;
    auto m = LoadHfModel(dir, opts);
    ASSERT_TRUE(m.ok()) << m.status();
    for (const bool lora : {false, true}) {
      if (lora) {
        ASSERT_TRUE(LoadAdapter(*m, JoinPath(dir, "adapter")).ok());
      }
      int matched = 0, total = 0;
      for (int i = 0; (*ref)->Find("gen_prompt_" + std::to_string(i)) != nullptr; ++i) {
        const std::vector<int32_t> prompt = Ints(Load(**ref, "gen_prompt_" + std::to_string(i)));
        const std::vector<int32_t> want =
            Ints(Load(**ref, (lora ? "gen_tokens_lora_" : "gen_tokens_") + std::to_string(i)));
        SamplingOptions o;
        o.temperature = 0;
        o.max_new_tokens = static_cast<int64_t>(want.size());
        auto got = Generate(*m, {prompt}, o);
        ASSERT_TRUE(got.ok()) << got.status();
        EXPECT_EQ((*got)[0].tokens, want) << GetParam() << (lora ? " + LoRA" : "") << " prompt " << i
                                          << " on " << device.str();
        matched += (*got)[0].tokens == want;
        ++total;
      }
      std::printf("%s%s greedy on %s: %d of %d prompts give transformers' tokens\n", GetParam().c_str(),
                  lora ? " + LoRA" : "", device.str().c_str(), matched, total);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, FixtureTest, ::testing::Values("llama", "qwen2"));

TEST(FixtureNf4Test, DynamicMapMatchesBitsandbytesFormula) {
  const std::string path = JoinPath(FixtureDir("nf4"), "nf4_reference.safetensors");
  if (!PathExists(path)) GTEST_SKIP() << path << " is absent: run scripts/gpu/make_model_fixtures.py";
  auto f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status();
  torch::Tensor map = Load(**f, "dynamic_map");
  const auto& ours = DynamicMap8Bit();
  int differing = 0;
  for (int i = 0; i < 256; ++i) {
    if (map[i].item<float>() != ours[i]) {
      ++differing;
      ADD_FAILURE() << "entry " << i << ": torch " << map[i].item<float>() << ", ours " << ours[i];
    }
  }
  EXPECT_EQ(differing, 0);
  // When bitsandbytes was importable there, its quantization of `weight` too.
  if ((*f)->Find("bnb_packed") == nullptr) {
    std::printf("no bitsandbytes output in the fixture; compared the dynamic map only\n");
    return;
  }
  torch::Tensor w = Load(**f, "weight").contiguous();
  Nf4Tensor q = QuantizeNf4({w.data_ptr<float>(), static_cast<size_t>(w.numel())}, {w.numel()});
  torch::Tensor packed = Load(**f, "bnb_packed").flatten();
  int64_t nibbles_differ = 0;
  for (int64_t i = 0; i < packed.numel(); ++i) {
    const uint8_t a = packed[i].item<uint8_t>(), b = q.packed[i];
    nibbles_differ += ((a >> 4) != (b >> 4)) + ((a & 15) != (b & 15));
  }
  std::printf("NF4 codes differing from bitsandbytes: %lld of %lld\n",
              static_cast<long long>(nibbles_differ), static_cast<long long>(w.numel()));
  EXPECT_EQ(nibbles_differ, 0);
  torch::Tensor deq = Load(**f, "bnb_dequantized").flatten();
  std::vector<float> ours_deq(w.numel());
  DequantizeNf4(q, ours_deq);
  torch::Tensor o = torch::from_blob(ours_deq.data(), {w.numel()}, torch::kFloat32);
  // The offset (mean of absmax) is summed in another order: allow a few float ulps.
  EXPECT_TRUE(torch::allclose(o, deq, 1e-5, 1e-7)) << (o - deq).abs().max().item<float>();
}

}  // namespace
}  // namespace temper::model
