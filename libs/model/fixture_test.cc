// Our logits against transformers' (+ PEFT's) on the tiny random models that
// scripts/gpu/make_model_fixtures.py writes to tests/fixtures/model/<name>/. Skips, naming the
// missing directory, until the fixtures exist. Tolerances (docs/model.md):
//   float32:  max |ours - reference| <= 1e-4
//   bfloat16: max |ours - reference| <= 0.02 + 0.02 |reference|, mean <= 5e-3 (different
//             kernels round bf16 intermediates differently; 2^-8 relative per rounding)
#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>

#include "libs/model/hf_checkpoint.h"
#include "libs/model/nf4.h"
#include "libs/model/peft_adapter.h"
#include "libs/model/torch_util.h"

namespace temper::model {
namespace {

namespace fs = std::filesystem;

fs::path FixtureDir(const std::string& name) {
  const char* src = std::getenv("TEMPER_SOURCE_DIR");
  return fs::path(src != nullptr ? src : ".") / "tests/fixtures/model" / name;
}

torch::Tensor Load(const SafetensorsFile& f, const std::string& name) {
  const TensorView* v = f.Find(name);
  if (v == nullptr) {
    ADD_FAILURE() << "reference.safetensors lacks " << name;
    return {};
  }
  return ToTorch(*v).value();
}

void Compare(const torch::Tensor& ours, const torch::Tensor& ref, bool bf16, const std::string& what) {
  ASSERT_EQ(ours.sizes(), ref.sizes()) << what;
  torch::Tensor diff = (ours.to(torch::kFloat32) - ref).abs();
  const float max_diff = diff.max().item<float>(), mean_diff = diff.mean().item<float>();
  std::printf("%s: max |diff| %.3g, mean %.3g (reference max |logit| %.3g)\n", what.c_str(), max_diff,
              mean_diff, ref.abs().max().item<float>());
  if (!bf16) {
    EXPECT_LE(max_diff, 1e-4f) << what;
  } else {
    EXPECT_TRUE((diff <= 0.02 + 0.02 * ref.abs()).all().item<bool>()) << what << " max " << max_diff;
    EXPECT_LE(mean_diff, 5e-3f) << what;
  }
}

class FixtureTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureTest, LogitsMatchTransformers) {
  const fs::path dir = FixtureDir(GetParam());
  if (!fs::exists(dir / "reference.safetensors")) {
    GTEST_SKIP() << dir.string() << " is absent: run scripts/gpu/make_model_fixtures.py (docs/model.md)";
  }
  auto ref = SafetensorsFile::Open((dir / "reference.safetensors").string());
  ASSERT_TRUE(ref.ok()) << ref.status();
  torch::Tensor ids = Load(**ref, "input_ids").to(torch::kInt64);
  torch::NoGradGuard no_grad;
  for (const bool bf16 : {false, true}) {
    LoadOptions opts;
    opts.dtype = bf16 ? torch::kBFloat16 : torch::kFloat32;
    auto m = LoadHfModel(dir.string(), opts);
    ASSERT_TRUE(m.ok()) << m.status();
    const std::string suffix = bf16 ? "bf16" : "fp32";
    Compare((*m)->forward(ids), Load(**ref, "logits_" + suffix), bf16, GetParam() + " " + suffix);
    ASSERT_TRUE(LoadAdapter(*m, (dir / "adapter").string()).ok());
    Compare((*m)->forward(ids), Load(**ref, "logits_" + suffix + "_lora"), bf16,
            GetParam() + " " + suffix + " + LoRA");
  }
}

INSTANTIATE_TEST_SUITE_P(Models, FixtureTest, ::testing::Values("llama", "qwen2"));

TEST(FixtureNf4Test, DynamicMapMatchesBitsandbytesFormula) {
  const fs::path path = FixtureDir("nf4") / "nf4_reference.safetensors";
  if (!fs::exists(path)) GTEST_SKIP() << path.string() << " is absent: run scripts/gpu/make_model_fixtures.py";
  auto f = SafetensorsFile::Open(path.string());
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
