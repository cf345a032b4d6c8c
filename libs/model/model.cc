#include "libs/model/model.h"

#include <cmath>
#include <limits>
#include <numbers>

#include "libs/model/torch_util.h"

namespace temper::model {

namespace F = torch::nn::functional;

KvCache KvCache::Allocate(const ModelConfig& config, int64_t batch, int64_t capacity,
                          torch::TensorOptions options) {
  KvCache cache;
  cache.capacity = capacity;
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    cache.keys.push_back(torch::zeros({batch, config.num_key_value_heads, capacity, config.head_dim}, options));
    cache.values.push_back(torch::zeros({batch, config.num_key_value_heads, capacity, config.head_dim}, options));
  }
  return cache;
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight_ = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  // transformers LlamaRMSNorm: normalise in float32, cast back, then scale.
  torch::Tensor h = x.to(torch::kFloat32);
  torch::Tensor variance = h.pow(2).mean(-1, /*keepdim=*/true);
  h = h * torch::rsqrt(variance + eps_);
  return weight_ * h.to(x.scalar_type());
}

RotaryEmbeddingImpl::RotaryEmbeddingImpl(const ModelConfig& c) {
  // As transformers' rope init functions, in float32 tensor arithmetic.
  const int64_t dim = c.head_dim;
  torch::Tensor exps = torch::arange(0, dim, 2, torch::kInt64).to(torch::kFloat32) / static_cast<double>(dim);
  torch::Tensor inv_freq = 1.0 / torch::pow(c.rope_theta, exps);
  const RopeScaling& s = c.rope_scaling;
  if (s.type == "linear") {
    inv_freq = inv_freq / s.factor;
  } else if (s.type == "llama3") {
    const double old_len = static_cast<double>(s.original_max_position_embeddings);
    const double low_freq_wavelen = old_len / s.low_freq_factor;
    const double high_freq_wavelen = old_len / s.high_freq_factor;
    torch::Tensor wavelen = 2 * std::numbers::pi / inv_freq;
    torch::Tensor llama = torch::where(wavelen > low_freq_wavelen, inv_freq / s.factor, inv_freq);
    torch::Tensor smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    torch::Tensor smoothed = (1 - smooth) * llama / s.factor + smooth * llama;
    torch::Tensor medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
    inv_freq = torch::where(medium, smoothed, llama);
  }
  inv_freq_ = register_buffer("inv_freq", inv_freq);
}

std::pair<torch::Tensor, torch::Tensor> RotaryEmbeddingImpl::forward(const torch::Tensor& position_ids,
                                                                     torch::Dtype dtype) {
  torch::Tensor freqs =
      position_ids.to(torch::kFloat32).unsqueeze(-1) * inv_freq_.to(torch::kFloat32).view({1, 1, -1});
  torch::Tensor emb = torch::cat({freqs, freqs}, -1);
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

namespace {

torch::Tensor RotateHalf(const torch::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

}  // namespace

AttentionImpl::AttentionImpl(const ModelConfig& c, int64_t layer)
    : layer_(layer), heads_(c.num_attention_heads), kv_heads_(c.num_key_value_heads), head_dim_(c.head_dim) {
  q_proj = register_module("q_proj", Linear(c.hidden_size, heads_ * head_dim_, c.qkv_bias));
  k_proj = register_module("k_proj", Linear(c.hidden_size, kv_heads_ * head_dim_, c.qkv_bias));
  v_proj = register_module("v_proj", Linear(c.hidden_size, kv_heads_ * head_dim_, c.qkv_bias));
  o_proj = register_module("o_proj", Linear(heads_ * head_dim_, c.hidden_size, c.o_bias));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                     const torch::Tensor& sin, const torch::Tensor& allowed,
                                     KvCache* cache) {
  const int64_t b = x.size(0), t = x.size(1);
  torch::Tensor q = q_proj(x).view({b, t, heads_, head_dim_}).transpose(1, 2);
  torch::Tensor k = k_proj(x).view({b, t, kv_heads_, head_dim_}).transpose(1, 2);
  torch::Tensor v = v_proj(x).view({b, t, kv_heads_, head_dim_}).transpose(1, 2);
  torch::Tensor c = cos.unsqueeze(1), s = sin.unsqueeze(1);  // [B, 1, T, D]
  q = q * c + RotateHalf(q) * s;
  k = k * c + RotateHalf(k) * s;
  if (cache != nullptr) {
    TORCH_CHECK(cache->length + t <= cache->capacity, "KV cache full: ", cache->length, " + ", t,
                " > ", cache->capacity);
    cache->keys[layer_].narrow(2, cache->length, t).copy_(k);
    cache->values[layer_].narrow(2, cache->length, t).copy_(v);
    k = cache->keys[layer_].narrow(2, 0, cache->length + t);
    v = cache->values[layer_].narrow(2, 0, cache->length + t);
  }
  if (kv_heads_ != heads_) {  // grouped-query attention: each kv head serves heads_/kv_heads_ queries
    k = k.repeat_interleave(heads_ / kv_heads_, 1);
    v = v.repeat_interleave(heads_ / kv_heads_, 1);
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  torch::Tensor out;
#if TEMPER_TORCH_HAS_SDPA
#if TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 1
  out = at::scaled_dot_product_attention(q, k, v, allowed, 0.0, false, scale);
#else
  out = at::scaled_dot_product_attention(q, k, v, allowed, 0.0, false);  // 2.0: scale is 1/sqrt(D)
#endif
#else
  torch::Tensor scores = torch::matmul(q, k.transpose(-2, -1)) * scale;
  scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
  torch::Tensor probs = torch::softmax(scores, -1, torch::kFloat32).to(q.scalar_type());
  out = torch::matmul(probs, v);
#endif
  out = out.transpose(1, 2).contiguous().view({b, t, heads_ * head_dim_});
  return o_proj(out);
}

MlpImpl::MlpImpl(const ModelConfig& c) {
  gate_proj = register_module("gate_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias));
  up_proj = register_module("up_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias));
  down_proj = register_module("down_proj", Linear(c.intermediate_size, c.hidden_size, c.mlp_bias));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return down_proj(F::silu(gate_proj(x)) * up_proj(x));
}

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& c, int64_t layer) {
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  self_attn = register_module("self_attn", Attention(c, layer));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  mlp = register_module("mlp", Mlp(c));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                        const torch::Tensor& sin, const torch::Tensor& allowed,
                                        KvCache* cache) {
  torch::Tensor h = x + self_attn(input_layernorm(x), cos, sin, allowed, cache);
  return h + mlp(post_attention_layernorm(h));
}

DecoderStackImpl::DecoderStackImpl(const ModelConfig& c) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) layers->push_back(DecoderLayer(c, l));
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  rotary_emb = register_module("rotary_emb", RotaryEmbedding(c));
}

TransformerImpl::TransformerImpl(ModelConfig config) : config_(std::move(config)) {
  model = register_module("model", DecoderStack(config_));
  if (!config_.tie_word_embeddings) {
    lm_head = register_module("lm_head", Linear(config_.hidden_size, config_.vocab_size, false));
  }
}

torch::Tensor BuildAttentionMask(int64_t batch, int64_t past, int64_t t, const torch::Tensor& key_mask,
                                 std::optional<int64_t> sliding_window, torch::Device device) {
  const int64_t s = past + t;
  auto idx = torch::TensorOptions().dtype(torch::kInt64).device(device);
  torch::Tensor q_slot = torch::arange(past, s, idx).view({t, 1});
  torch::Tensor k_slot = torch::arange(0, s, idx).view({1, s});
  torch::Tensor allowed = k_slot <= q_slot;  // [T, S]
  if (sliding_window.has_value()) allowed = allowed.logical_and(q_slot - k_slot < *sliding_window);
  allowed = allowed.view({1, 1, t, s}).expand({batch, 1, t, s});
  if (key_mask.defined()) {
    allowed = allowed.logical_and(key_mask.to(device, torch::kBool).view({batch, 1, 1, s}));
  }
  return allowed.logical_or((k_slot == q_slot).view({1, 1, t, s}));
}

torch::Tensor TransformerImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& position_ids,
                                       const torch::Tensor& key_mask, KvCache* cache) {
  const int64_t b = input_ids.size(0), t = input_ids.size(1);
  const int64_t past = cache != nullptr ? cache->length : 0;
  torch::Tensor positions = position_ids;
  if (!positions.defined()) {
    positions = torch::arange(past, past + t, input_ids.options().dtype(torch::kInt64)).unsqueeze(0).expand({b, t});
  }
  torch::Tensor h = model->embed_tokens(input_ids);
  auto [cos, sin] = model->rotary_emb(positions.to(h.device()), h.scalar_type());
  torch::Tensor allowed = BuildAttentionMask(b, past, t, key_mask, config_.sliding_window, h.device());
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) h = layer(l).forward(h, cos, sin, allowed, cache);
  if (cache != nullptr) cache->length += t;
  h = model->norm(h);
  return lm_head ? lm_head(h) : torch::nn::functional::linear(h, model->embed_tokens->weight);
}

std::vector<std::pair<std::string, Linear>> TransformerImpl::Projections() {
  std::vector<std::pair<std::string, Linear>> out;
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
    DecoderLayerImpl& d = layer(l);
    const std::string p = "model.layers." + std::to_string(l) + ".";
    out.emplace_back(p + "self_attn.q_proj", d.self_attn->q_proj);
    out.emplace_back(p + "self_attn.k_proj", d.self_attn->k_proj);
    out.emplace_back(p + "self_attn.v_proj", d.self_attn->v_proj);
    out.emplace_back(p + "self_attn.o_proj", d.self_attn->o_proj);
    out.emplace_back(p + "mlp.gate_proj", d.mlp->gate_proj);
    out.emplace_back(p + "mlp.up_proj", d.mlp->up_proj);
    out.emplace_back(p + "mlp.down_proj", d.mlp->down_proj);
  }
  return out;
}

torch::Tensor TransformerImpl::OutputWeight() {
  return lm_head ? lm_head->weight() : model->embed_tokens->weight;
}

}  // namespace temper::model
