// Decoder-only transformers of the Llama family (Llama 2/3, Qwen2, Mistral) on libtorch's C++ API:
// RMSNorm, rotary embeddings (with Llama 3 scaling), grouped-query attention, SwiGLU MLP. This file
// holds the architecture only (STYLE.md 10): loading weights is hf_checkpoint.h, NF4 and LoRA are
// applied from outside (linear.h, lora.h), sampling is generate.h.
//
// Parameter names equal Hugging Face's (model.layers.0.self_attn.q_proj.weight, lm_head.weight),
// so named_parameters() is the checkpoint's key set. Numerics follow transformers' modeling_llama
// / modeling_qwen2 / modeling_mistral: RMSNorm in float32, RoPE tables in float32 then cast,
// softmax in float32. Modules are not thread-safe; use one model per thread or serialize calls.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "libs/model/config.h"
#include "libs/model/linear.h"

namespace temper::model {

// Keys and values of past positions for incremental decoding: per layer, [batch, kv_heads,
// capacity, head_dim]. `length` slots are filled; each forward with a cache appends its T tokens.
struct KvCache {
  std::vector<torch::Tensor> keys;
  std::vector<torch::Tensor> values;
  int64_t length = 0;
  int64_t capacity = 0;

  // A cache for `batch` sequences of up to `capacity` positions, in `options` (dtype, device).
  static KvCache Allocate(const ModelConfig& config, int64_t batch, int64_t capacity,
                          torch::TensorOptions options);
};

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::Tensor weight_;
  double eps_;
};
TORCH_MODULE(RMSNorm);

// cos/sin tables of rotary embeddings for arbitrary position ids.
class RotaryEmbeddingImpl : public torch::nn::Module {
 public:
  explicit RotaryEmbeddingImpl(const ModelConfig& config);
  // position_ids [B, T] -> (cos, sin), each [B, T, head_dim] in `dtype`.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& position_ids,
                                                  torch::Dtype dtype);
  const torch::Tensor& inv_freq() const { return inv_freq_; }

 private:
  torch::Tensor inv_freq_;  // [head_dim / 2] float32, a non-persistent buffer
};
TORCH_MODULE(RotaryEmbedding);

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const ModelConfig& config, int64_t layer);
  // x [B, T, H]; cos/sin [B, T, D]; allowed [B, 1, T, S] bool (S = past + T). With a cache, keys
  // and values are written at slots [cache->length, cache->length + T) of this layer.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& allowed, KvCache* cache);

  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};

 private:
  int64_t layer_;
  int64_t heads_;
  int64_t kv_heads_;
  int64_t head_dim_;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  explicit MlpImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // down(silu(gate(x)) * up(x))

  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Mlp);

class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const ModelConfig& config, int64_t layer);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& allowed, KvCache* cache);

  RMSNorm input_layernorm{nullptr};
  Attention self_attn{nullptr};
  RMSNorm post_attention_layernorm{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(DecoderLayer);

// The decoder stack without the output head ("model." in HF names).
class DecoderStackImpl : public torch::nn::Module {
 public:
  explicit DecoderStackImpl(const ModelConfig& config);

  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
  RotaryEmbedding rotary_emb{nullptr};
};
TORCH_MODULE(DecoderStack);

// A causal language model: token ids in, next-token logits out.
class TransformerImpl : public torch::nn::Module {
 public:
  explicit TransformerImpl(ModelConfig config);

  // input_ids [B, T] (int64). Optional:
  //   position_ids [B, T]: defaults to past + arange(T) (past = cache ? cache->length : 0);
  //   key_mask [B, past + T] bool: false marks padding keys (left padding in batched generation);
  //   cache: appends this call's keys/values and advances cache->length by T.
  // Returns logits [B, T, vocab] in the model's dtype. A query always attends to itself, so rows
  // of padding stay finite. Throws c10::Error on shape errors (callers at the edge catch it).
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& position_ids = {},
                        const torch::Tensor& key_mask = {}, KvCache* cache = nullptr);

  const ModelConfig& config() const { return config_; }
  DecoderLayerImpl& layer(int64_t i) { return *model->layers[i]->as<DecoderLayerImpl>(); }
  // Every projection of every layer, with its HF module path ("model.layers.3.mlp.up_proj").
  std::vector<std::pair<std::string, Linear>> Projections();
  // The output projection's weight (the embedding's when tied).
  torch::Tensor OutputWeight();

  DecoderStack model{nullptr};
  Linear lm_head{nullptr};  // null when tie_word_embeddings

 private:
  ModelConfig config_;
};
TORCH_MODULE(Transformer);

// The boolean attention mask [B, 1, T, past + T]: causal over cache slots, padding keys removed,
// Mistral's sliding window applied, the diagonal always allowed.
torch::Tensor BuildAttentionMask(int64_t batch, int64_t past, int64_t t, const torch::Tensor& key_mask,
                                 std::optional<int64_t> sliding_window, torch::Device device);

}  // namespace temper::model
