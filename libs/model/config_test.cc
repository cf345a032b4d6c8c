#include "libs/model/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace temper::model {
namespace {

using ::testing::HasSubstr;

TEST(ConfigTest, Llama3WithRopeScaling) {
  auto c = ModelConfig::FromJson(R"({
    "model_type": "llama", "vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
    "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "hidden_act": "silu", "tie_word_embeddings": false, "torch_dtype": "bfloat16",
    "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009]})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_EQ(c->num_key_value_heads, 8);
  EXPECT_EQ(c->rope_scaling.type, "llama3");
  EXPECT_EQ(c->rope_scaling.factor, 8.0);
  EXPECT_EQ(c->rope_theta, 500000.0);
  EXPECT_EQ(c->eos_token_ids.size(), 3u);
  EXPECT_FALSE(c->qkv_bias);
  EXPECT_EQ(c->dtype, "bfloat16");
}

TEST(ConfigTest, Qwen2HasQkvBiasAndTiedEmbeddings) {
  auto c = ModelConfig::FromJson(R"({"model_type": "qwen2", "vocab_size": 256, "hidden_size": 64,
    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "tie_word_embeddings": true, "use_sliding_window": false,
    "sliding_window": 4096, "rope_theta": 1000000.0})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->qkv_bias);
  EXPECT_FALSE(c->o_bias);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_FALSE(c->sliding_window.has_value());
}

TEST(ConfigTest, TransformersV5RopeParameters) {
  auto c = ModelConfig::FromJson(R"({"model_type": "mistral", "vocab_size": 256, "hidden_size": 64,
    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "head_dim": 32,
    "sliding_window": 16, "rope_parameters": {"rope_type": "default", "rope_theta": 12345.0}})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->rope_theta, 12345.0);
  EXPECT_EQ(c->head_dim, 32);
  EXPECT_EQ(c->sliding_window, 16);
}

TEST(ConfigTest, Rejections) {
  EXPECT_EQ(ModelConfig::FromJson(R"({"model_type": "gpt2"})").status().code(),
            absl::StatusCode::kUnimplemented);
  auto bad_heads = ModelConfig::FromJson(R"({"model_type": "llama", "vocab_size": 8, "hidden_size": 64,
    "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 3})");
  EXPECT_THAT(std::string(bad_heads.status().message()), HasSubstr("multiple of num_key_value_heads"));
  auto yarn = ModelConfig::FromJson(R"({"model_type": "llama", "vocab_size": 8, "hidden_size": 64,
    "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 4,
    "rope_scaling": {"rope_type": "yarn", "factor": 4.0}})");
  EXPECT_EQ(yarn.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(ModelConfig::FromJson("{").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ModelConfig::FromJson(R"({"model_type": "llama"})").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ModelConfig::FromFile("/nonexistent/config.json").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace temper::model
