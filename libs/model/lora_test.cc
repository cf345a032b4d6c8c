#include "libs/model/lora.h"

#include <gtest/gtest.h>

#include "libs/model/peft_adapter.h"
#include "libs/model/safetensors.h"
#include "libs/model/test_util.h"

namespace temper::model {
namespace {

using testing::TempDir;
using testing::TinyConfig;

torch::Tensor Ids() { return torch::tensor({{1, 5, 9, 200, 3}}, torch::kInt64); }

TEST(LoraTest, InitIsIdentityAndFreezesBase) {
  torch::manual_seed(0);
  Transformer m(TinyConfig());
  torch::NoGradGuard no_grad;
  torch::Tensor before = m->forward(Ids());
  LoraConfig c;
  c.target_modules = {"q_proj", "v_proj", "down_proj"};
  ASSERT_TRUE(ApplyLora(m, c, 7).ok());
  EXPECT_TRUE(torch::equal(before, m->forward(Ids())));  // B = 0
  auto params = LoraParameters(m);
  EXPECT_EQ(params.size(), 2u * 3 * 2);  // A and B, 3 modules, 2 layers
  EXPECT_EQ(params[0].first, "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
  EXPECT_EQ(params[0].second.sizes(), (std::vector<int64_t>{8, 64}));
  EXPECT_LE(params[0].second.abs().max().item<float>(), 1.0f / 8.0f);  // 1/sqrt(in = 64)
  int64_t trainable = 0;
  for (auto& p : m->parameters()) trainable += p.requires_grad() ? p.numel() : 0;
  EXPECT_EQ(trainable, 2 * (8 * 64 + 64 * 8 + 8 * 64 + 32 * 8 + 8 * 128 + 64 * 8));
  EXPECT_FALSE(ApplyLora(m, c, 7).ok());  // already applied
}

TEST(LoraTest, ScalingAndValidation) {
  LoraConfig c;
  c.r = 16;
  c.alpha = 32;
  EXPECT_DOUBLE_EQ(c.scaling(), 2.0);
  c.use_rslora = true;
  EXPECT_DOUBLE_EQ(c.scaling(), 8.0);
  c.target_modules = {"qkv"};
  EXPECT_FALSE(c.Validate().ok());
  c.target_modules = {"o_proj"};
  c.r = 0;
  EXPECT_FALSE(c.Validate().ok());
}

TEST(LoraTest, GradientsReachOnlyLoraFactors) {
  torch::manual_seed(1);
  Transformer m(TinyConfig());
  ASSERT_TRUE(ApplyLora(m, LoraConfig{}, 1).ok());
  m->train();
  torch::Tensor loss = m->forward(Ids()).pow(2).mean();
  loss.backward();
  for (auto& p : m->named_parameters()) {
    const bool lora = p.key().find("lora_") != std::string::npos;
    EXPECT_EQ(p.value().grad().defined(), lora) << p.key();
  }
  // B starts at zero, so A's gradient is zero and B's is not.
  EXPECT_GT(m->layer(0).mlp->up_proj->lora_B().grad().abs().sum().item<float>(), 0.0f);
}

TEST(LoraTest, PeftAdapterRoundTrip) {
  torch::manual_seed(2);
  Transformer m(TinyConfig());
  LoraConfig c;
  c.r = 4;
  c.alpha = 8;
  c.target_modules = {"k_proj", "o_proj", "gate_proj", "up_proj"};
  ASSERT_TRUE(ApplyLora(m, c, 3).ok());
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, t] : LoraParameters(m)) t.normal_(0, 0.1);
  }
  TempDir dir("adapter");
  ASSERT_TRUE(SaveAdapter(m, c, dir.path(), "tiny-llama").ok());
  auto cfg = ReadAdapterConfig(dir.path());
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->r, 4);
  EXPECT_EQ(cfg->alpha, 8);
  EXPECT_EQ(cfg->target_modules, c.target_modules);

  // A fresh model with the same base weights and the adapter gives the same logits.
  torch::manual_seed(2);
  Transformer fresh(TinyConfig());
  ASSERT_TRUE(LoadAdapter(fresh, dir.path()).ok());
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(m->forward(Ids()), fresh->forward(Ids())));
  auto file = SafetensorsFile::Open(dir.Join("adapter_model.safetensors")).value();
  EXPECT_NE(file->Find("base_model.model.model.layers.1.mlp.gate_proj.lora_B.weight"), nullptr);
  EXPECT_EQ(file->tensors().size(), 2u * 4 * 2);
}

TEST(LoraTest, RejectsUnsupportedAdapterConfigs) {
  TempDir dir("bad_adapter");
  dir.Write("adapter_config.json", R"({"peft_type": "LORA", "r": 4, "target_modules": ["q_proj"], "use_dora": true})");
  EXPECT_EQ(ReadAdapterConfig(dir.path()).status().code(), absl::StatusCode::kUnimplemented);
  dir.Write("adapter_config.json", R"({"peft_type": "LORA", "r": 4, "target_modules": ".*q_proj"})");
  EXPECT_EQ(ReadAdapterConfig(dir.path()).status().code(), absl::StatusCode::kUnimplemented);
  dir.Write("adapter_config.json", R"({"peft_type": "LORA", "r": "four", "target_modules": ["q_proj"]})");
  EXPECT_EQ(ReadAdapterConfig(dir.path()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(LoraTest, LoraOnNf4Base) {
  torch::manual_seed(3);
  Transformer m(TinyConfig());
  for (auto& [name, linear] : m->Projections()) linear->QuantizeBaseNf4();
  ASSERT_TRUE(ApplyLora(m, LoraConfig{}, 4).ok());
  m->train();
  m->forward(Ids()).pow(2).mean().backward();
  EXPECT_GT(m->layer(1).self_attn->q_proj->lora_B().grad().abs().sum().item<float>(), 0.0f);
}

}  // namespace
}  // namespace temper::model
