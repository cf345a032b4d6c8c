#include "libs/model/generate.h"

#include <gtest/gtest.h>

#include "libs/model/test_util.h"

namespace temper::model {
namespace {

using testing::TinyConfig;

Transformer Tiny() {
  torch::manual_seed(0);
  Transformer m(TinyConfig());
  torch::NoGradGuard no_grad;
  // Larger weights than the default init, so the distribution is far from uniform.
  m->model->embed_tokens->weight.normal_(0, 1.0);
  return m;
}

TEST(GenerateTest, GreedyMatchesArgmaxWithoutCache) {
  Transformer m = Tiny();
  SamplingOptions o;
  o.temperature = 0;
  o.max_new_tokens = 6;
  auto got = Generate(m, {{3, 1, 4, 1, 5}}, o);
  ASSERT_TRUE(got.ok()) << got.status();
  std::vector<int64_t> seq = {3, 1, 4, 1, 5};
  torch::NoGradGuard no_grad;
  for (int i = 0; i < 6; ++i) {
    torch::Tensor logits = m->forward(torch::tensor(seq, torch::kInt64).unsqueeze(0));
    const int64_t next = logits[0][-1].argmax().item<int64_t>();
    EXPECT_EQ((*got)[0].tokens[i], next) << i;
    seq.push_back(next);
  }
  EXPECT_EQ((*got)[0].finish, FinishReason::kLength);
}

TEST(GenerateTest, BatchedGreedyEqualsOneByOne) {
  Transformer m = Tiny();
  SamplingOptions o;
  o.temperature = 0;
  o.max_new_tokens = 5;
  auto batch = Generate(m, {{9, 8, 7}, {1, 2, 3, 4, 5, 6}}, o);
  auto a = Generate(m, {{9, 8, 7}}, o);
  auto b = Generate(m, {{1, 2, 3, 4, 5, 6}}, o);
  ASSERT_TRUE(batch.ok() && a.ok() && b.ok());
  EXPECT_EQ((*batch)[0].tokens, (*a)[0].tokens);
  EXPECT_EQ((*batch)[1].tokens, (*b)[0].tokens);
}

TEST(GenerateTest, SeededSamplingIsReproducible) {
  Transformer m = Tiny();
  SamplingOptions o;
  o.temperature = 1.0;
  o.top_p = 0.9;
  o.top_k = 50;
  o.max_new_tokens = 12;
  o.seed = 42;
  auto x = Generate(m, {{1, 2}, {3, 4}}, o);
  auto y = Generate(m, {{1, 2}, {3, 4}}, o);
  ASSERT_TRUE(x.ok() && y.ok());
  EXPECT_EQ((*x)[0].tokens, (*y)[0].tokens);
  EXPECT_EQ((*x)[1].tokens, (*y)[1].tokens);
  o.seed = 43;
  auto z = Generate(m, {{1, 2}, {3, 4}}, o);
  EXPECT_NE((*x)[0].tokens, (*z)[0].tokens);
}

TEST(GenerateTest, StopsAndCallback) {
  Transformer m = Tiny();
  SamplingOptions o;
  o.temperature = 0;
  o.max_new_tokens = 8;
  auto free_run = Generate(m, {{5, 6, 7}}, o).value()[0].tokens;
  ASSERT_EQ(free_run.size(), 8u);

  SamplingOptions eos = o;
  eos.eos_token_ids = {free_run[2]};
  auto g = Generate(m, {{5, 6, 7}}, eos).value()[0];
  EXPECT_EQ(g.finish, FinishReason::kEos);
  EXPECT_LE(g.tokens.size(), 3u);

  SamplingOptions seq = o;
  seq.stop_sequences = {{free_run[3], free_run[4]}};
  g = Generate(m, {{5, 6, 7}}, seq).value()[0];
  EXPECT_EQ(g.finish, FinishReason::kStopSequence);
  EXPECT_LE(g.tokens.size(), 5u);

  SamplingOptions str = o;
  str.decode = [](std::span<const int32_t> ids) {
    std::string s;
    for (int32_t id : ids) s += "<" + std::to_string(id) + ">";
    return s;
  };
  str.stop_strings = {"<" + std::to_string(free_run[1]) + ">"};
  g = Generate(m, {{5, 6, 7}}, str).value()[0];
  EXPECT_EQ(g.finish, FinishReason::kStopString);

  std::vector<int32_t> streamed;
  auto cb = Generate(m, {{5, 6, 7}}, o, [&](size_t i, int32_t t) {
    streamed.push_back(t);
    return streamed.size() < 4;
  });
  EXPECT_EQ(streamed, std::vector<int32_t>(free_run.begin(), free_run.begin() + 4));
  EXPECT_EQ((*cb)[0].finish, FinishReason::kCallback);
}

TEST(GenerateTest, SampleTokenFilters) {
  std::vector<float> logits = {0.0f, 5.0f, 4.9f, -1.0f};
  std::mt19937_64 rng(1);
  SamplingOptions o;
  o.top_k = 1;
  for (int i = 0; i < 20; ++i) EXPECT_EQ(SampleToken(logits.data(), 4, o, rng), 1);
  o.top_k = 0;
  o.top_p = 0.4;  // token 1 alone has p ~ 0.5 >= 0.4
  for (int i = 0; i < 20; ++i) EXPECT_EQ(SampleToken(logits.data(), 4, o, rng), 1);
  o.top_p = 1.0;
  o.temperature = 1.0;
  int counts[4] = {0, 0, 0, 0};
  for (int i = 0; i < 4000; ++i) ++counts[SampleToken(logits.data(), 4, o, rng)];
  EXPECT_GT(counts[2], 1500);  // p(2) = e^4.9 / (1 + e^5 + e^4.9 + e^-1) ~ 0.47
  EXPECT_LT(counts[3], 20);
}

TEST(GenerateTest, RejectsBadOptions) {
  Transformer m = Tiny();
  SamplingOptions o;
  o.top_p = 0;
  EXPECT_EQ(Generate(m, {{1}}, o).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Generate(m, {{}}, SamplingOptions{}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Generate(m, {{999}}, SamplingOptions{}).status().code(), absl::StatusCode::kInvalidArgument);
  SamplingOptions s;
  s.stop_strings = {"x"};
  EXPECT_EQ(Generate(m, {{1}}, s).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace temper::model
