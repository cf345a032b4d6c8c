#include "libs/model/model.h"

#include <cmath>
#include <cstring>
#include <numbers>

#include <gtest/gtest.h>

#include "libs/model/hf_checkpoint.h"
#include "libs/model/nf4.h"
#include "libs/model/safetensors.h"
#include "libs/model/test_util.h"

namespace temper::model {
namespace {

using testing::TempDir;
using testing::TinyConfig;
using testing::TinyConfigJson;

// Makes a tiny random model directory (config.json + model.safetensors) and returns the model.
Transformer MakeModelDir(const TempDir& dir, const std::string& type = "llama") {
  torch::manual_seed(0);
  Transformer m(TinyConfig(type));
  // Non-trivial norms and biases, so loading them matters.
  torch::NoGradGuard no_grad;
  for (auto& p : m->named_parameters()) {
    if (p.key().find("norm") != std::string::npos || p.key().find("bias") != std::string::npos) {
      p.value().uniform_(0.5, 1.5);
    }
  }
  dir.Write("config.json", TinyConfigJson(type).dump());
  EXPECT_TRUE(SaveHfWeights(m, dir.Join("model.safetensors")).ok());
  return m;
}

torch::Tensor Ids() { return torch::tensor({{1, 5, 9, 200, 3, 7, 11, 13}, {2, 4, 6, 8, 10, 12, 14, 16}}, torch::kInt64); }

TEST(ModelTest, LoadsWhatItSaved) {
  for (const std::string type : {"llama", "qwen2", "mistral"}) {
    TempDir dir("load_" + type);
    Transformer m = MakeModelDir(dir, type);
    auto loaded = LoadHfModel(dir.path());
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    torch::NoGradGuard no_grad;
    torch::Tensor a = m->forward(Ids()), b = (*loaded)->forward(Ids());
    EXPECT_EQ(a.sizes(), (std::vector<int64_t>{2, 8, 256}));
    EXPECT_TRUE(torch::equal(a, b)) << type;
  }
}

TEST(ModelTest, LoadsShardedCheckpoints) {
  TempDir dir("sharded");
  Transformer m = MakeModelDir(dir);
  // Split model.safetensors into two shards plus an index.
  auto full = SafetensorsFile::Open(dir.Join("model.safetensors")).value();
  SafetensorsWriter a, b;
  nlohmann::json map;
  int i = 0;
  for (const TensorView& t : full->tensors()) {
    SafetensorsWriter& w = (i++ % 2 == 0) ? a : b;
    ASSERT_TRUE(w.Add(t.name, t.dtype, t.shape, t.data).ok());
    map[t.name] = (&w == &a) ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  full.reset();
  std::remove(dir.Join("model.safetensors").c_str());
  ASSERT_TRUE(a.WriteFile(dir.Join("model-00001-of-00002.safetensors")).ok());
  ASSERT_TRUE(b.WriteFile(dir.Join("model-00002-of-00002.safetensors")).ok());
  dir.Write("model.safetensors.index.json", nlohmann::json({{"metadata", {}}, {"weight_map", map}}).dump());
  auto loaded = LoadHfModel(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(m->forward(Ids()), (*loaded)->forward(Ids())));
}

TEST(ModelTest, MissingOrMisshapenTensorsAreErrors) {
  TempDir dir("missing");
  Transformer m = MakeModelDir(dir);
  SafetensorsWriter w;
  auto full = SafetensorsFile::Open(dir.Join("model.safetensors")).value();
  for (const TensorView& t : full->tensors()) {
    if (t.name != "model.norm.weight") {
      ASSERT_TRUE(w.Add(t.name, t.dtype, t.shape, t.data).ok());
    }
  }
  ASSERT_TRUE(w.WriteFile(dir.Join("model.safetensors")).ok());
  auto loaded = LoadHfModel(dir.path());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(loaded.status().message().find("model.norm.weight"), std::string::npos);
  EXPECT_EQ(LoadHfModel(dir.Join("nope")).status().code(), absl::StatusCode::kNotFound);
}

TEST(ModelTest, KvCacheMatchesFullForward) {
  torch::manual_seed(1);
  Transformer m(TinyConfig());
  torch::NoGradGuard no_grad;
  torch::Tensor ids = Ids();
  torch::Tensor full = m->forward(ids);
  KvCache cache = KvCache::Allocate(m->config(), 2, 16, torch::TensorOptions());
  torch::Tensor first = m->forward(ids.narrow(1, 0, 5), {}, {}, &cache);
  EXPECT_TRUE(torch::allclose(first, full.narrow(1, 0, 5), 1e-5, 1e-6));
  for (int64_t t = 5; t < 8; ++t) {
    torch::Tensor step = m->forward(ids.narrow(1, t, 1), {}, {}, &cache);
    EXPECT_TRUE(torch::allclose(step, full.narrow(1, t, 1), 1e-5, 1e-6)) << t;
  }
  EXPECT_EQ(cache.length, 8);
}

TEST(ModelTest, LeftPaddingDoesNotChangeLogits) {
  torch::manual_seed(2);
  Transformer m(TinyConfig());
  torch::NoGradGuard no_grad;
  torch::Tensor alone = m->forward(torch::tensor({{7, 8, 9}}, torch::kInt64));
  torch::Tensor ids = torch::tensor({{0, 0, 7, 8, 9}}, torch::kInt64);
  torch::Tensor pos = torch::tensor({{0, 0, 0, 1, 2}}, torch::kInt64);
  torch::Tensor mask = torch::tensor({{false, false, true, true, true}});
  torch::Tensor padded = m->forward(ids, pos, mask);
  EXPECT_TRUE(torch::allclose(padded.narrow(1, 2, 3), alone, 1e-5, 1e-6));
}

TEST(ModelTest, SlidingWindowMask) {
  torch::Tensor allowed = BuildAttentionMask(1, 0, 5, {}, 2, torch::kCPU);
  // Query 4 sees keys 3 and 4 only.
  EXPECT_EQ(allowed[0][0][4].to(torch::kInt64).sum().item<int64_t>(), 2);
  EXPECT_TRUE(allowed[0][0][4][3].item<bool>());
  EXPECT_FALSE(allowed[0][0][4][2].item<bool>());
  EXPECT_FALSE(allowed[0][0][1][2].item<bool>());  // causal
}

TEST(ModelTest, Llama3RopeScaling) {
  ModelConfig c = TinyConfig();
  c.head_dim = 128;
  c.rope_theta = 500000.0;
  c.rope_scaling = {"llama3", 8.0, 1.0, 4.0, 8192};
  RotaryEmbedding rope(c);
  torch::Tensor inv = rope->inv_freq();
  for (int64_t i = 0; i < 64; ++i) {
    // The formula in double precision (transformers _compute_llama3_parameters).
    const double f = 1.0 / std::pow(500000.0, (2.0 * i) / 128.0);
    const double wavelen = 2 * std::numbers::pi / f;
    double want = f;
    if (wavelen > 8192.0) {
      want = f / 8.0;
    } else if (wavelen >= 8192.0 / 4.0) {
      const double smooth = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
      want = (1 - smooth) * f / 8.0 + smooth * f;
    }
    EXPECT_NEAR(inv[i].item<float>(), want, 1e-6 * want + 1e-12) << i;
  }
}

TEST(ModelTest, Nf4BaseStaysCloseToDense) {
  TempDir dir("nf4");
  MakeModelDir(dir);
  auto dense = LoadHfModel(dir.path());
  LoadOptions opts;
  opts.nf4 = true;
  auto quant = LoadHfModel(dir.path(), opts);
  ASSERT_TRUE(dense.ok() && quant.ok());
  torch::NoGradGuard no_grad;
  torch::Tensor a = (*dense)->forward(Ids()), b = (*quant)->forward(Ids());
  EXPECT_FALSE(torch::equal(a, b));
  const double rel = ((a - b).norm() / a.norm()).item<double>();
  EXPECT_LT(rel, 0.2) << "relative logit error of the NF4 model";
  EXPECT_EQ((*quant)->layer(0).self_attn->q_proj->weight().numel(), 0);
  EXPECT_TRUE((*quant)->layer(0).self_attn->q_proj->is_nf4());
  // The dequantized weight equals the CPU reference's dequantization.
  torch::Tensor w = (*dense)->layer(1).mlp->down_proj->weight().contiguous();
  Nf4Tensor q = QuantizeNf4({w.data_ptr<float>(), static_cast<size_t>(w.numel())}, {w.size(0), w.size(1)});
  std::vector<float> ref(w.numel());
  DequantizeNf4(q, ref);
  torch::Tensor got = (*quant)->layer(1).mlp->down_proj->BaseWeight().contiguous();
  EXPECT_EQ(std::memcmp(got.data_ptr<float>(), ref.data(), ref.size() * 4), 0);
}

TEST(ModelTest, Bf16Forward) {
  TempDir dir("bf16");
  MakeModelDir(dir);
  LoadOptions opts;
  opts.dtype = torch::kBFloat16;
  auto m16 = LoadHfModel(dir.path(), opts);
  auto m32 = LoadHfModel(dir.path());
  ASSERT_TRUE(m16.ok() && m32.ok());
  torch::NoGradGuard no_grad;
  torch::Tensor a = (*m16)->forward(Ids());
  EXPECT_EQ(a.scalar_type(), torch::kBFloat16);
  EXPECT_LT((a.to(torch::kFloat32) - (*m32)->forward(Ids())).abs().max().item<float>(), 0.05f);
}

}  // namespace
}  // namespace temper::model
