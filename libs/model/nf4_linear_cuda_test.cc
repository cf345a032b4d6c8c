// The NF4 linear on CUDA (kernel path) against the CPU reference path (label gpu; skips with the
// reason when libtorch sees no CUDA device).
#include <gtest/gtest.h>

#include "libs/model/generate.h"
#include "libs/model/lora.h"
#include "libs/model/model.h"
#include "libs/model/test_util.h"

namespace temper::model {
namespace {

TEST(Nf4LinearCudaTest, KernelPathMatchesCpuReference) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "libtorch reports no CUDA device";
  torch::manual_seed(0);
  Transformer cpu(testing::TinyConfig());
  for (auto& [name, linear] : cpu->Projections()) linear->QuantizeBaseNf4();
  torch::manual_seed(0);
  Transformer gpu(testing::TinyConfig());
  for (auto& [name, linear] : gpu->Projections()) linear->QuantizeBaseNf4();
  gpu->to(torch::kCUDA);
  torch::NoGradGuard no_grad;
  auto cpu_proj = cpu->Projections();
  auto gpu_proj = gpu->Projections();
  for (size_t i = 0; i < cpu_proj.size(); ++i) {
    torch::Tensor a = cpu_proj[i].second->BaseWeight();
    torch::Tensor b = gpu_proj[i].second->BaseWeight().cpu();
    EXPECT_TRUE(torch::equal(a, b)) << cpu_proj[i].first;
  }
  torch::Tensor ids = torch::tensor({{1, 2, 3, 4, 5}}, torch::kInt64);
  torch::Tensor lc = cpu->forward(ids), lg = gpu->forward(ids.cuda()).cpu();
  EXPECT_TRUE(torch::allclose(lc, lg, 1e-4, 1e-4)) << (lc - lg).abs().max().item<float>();
  // Generation on the GPU runs end to end with a LoRA on the NF4 base.
  ASSERT_TRUE(ApplyLora(gpu, LoraConfig{}, 1).ok());
  SamplingOptions o;
  o.max_new_tokens = 8;
  o.seed = 1;
  auto g = Generate(gpu, {{1, 2, 3}, {4, 5}}, o);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ((*g)[0].tokens.size(), 8u);
}

}  // namespace
}  // namespace temper::model
