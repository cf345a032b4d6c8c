#include "libs/train/packed_forward.h"

#include <ATen/Context.h>
#include <torch/csrc/autograd/custom_function.h>

namespace temper::train {
namespace {

// Reentrant activation checkpointing of one decoder layer (torch.utils.checkpoint with
// use_reentrant=True): forward runs without autograd and keeps only the layer's inputs and the
// RNG state; backward restores that RNG state, recomputes the layer with autograd on, and
// back-propagates through it, which accumulates the layer's parameter gradients directly and
// returns the gradient of its input.
struct CheckpointedLayer : public torch::autograd::Function<CheckpointedLayer> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, torch::Tensor cos,
                               torch::Tensor sin, torch::Tensor allowed, int64_t layer_address) {
    auto* layer = reinterpret_cast<model::DecoderLayerImpl*>(layer_address);
    at::Generator gen = at::globalContext().defaultGenerator(x.device());
    torch::Tensor rng_state;
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      rng_state = gen.get_state();
    }
    ctx->save_for_backward({x, cos, sin, allowed});
    ctx->saved_data["layer"] = layer_address;
    ctx->saved_data["rng"] = rng_state;
    return layer->forward(x, cos, sin, allowed, nullptr);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    auto* layer = reinterpret_cast<model::DecoderLayerImpl*>(ctx->saved_data["layer"].toInt());
    torch::Tensor x = saved[0].detach().requires_grad_(true);
    at::Generator gen = at::globalContext().defaultGenerator(x.device());
    torch::Tensor now;
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      now = gen.get_state();
      gen.set_state(ctx->saved_data["rng"].toTensor());
    }
    torch::Tensor out;
    {
      torch::AutoGradMode enable(true);
      out = layer->forward(x, saved[1], saved[2], saved[3], nullptr);
    }
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(now);
    }
    torch::autograd::backward({out}, {grad_out[0]});
    return {x.grad(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor DocumentCausalMask(const torch::Tensor& doc_ids, std::optional<int64_t> sliding_window) {
  const int64_t b = doc_ids.size(0), t = doc_ids.size(1);
  auto idx = torch::TensorOptions().dtype(torch::kInt64).device(doc_ids.device());
  torch::Tensor q = torch::arange(t, idx).view({t, 1});
  torch::Tensor k = torch::arange(t, idx).view({1, t});
  torch::Tensor causal = k <= q;  // [T, T]
  if (sliding_window.has_value()) causal = causal.logical_and(q - k < *sliding_window);
  torch::Tensor same_doc = doc_ids.unsqueeze(2) == doc_ids.unsqueeze(1);  // [B, T, T]
  torch::Tensor real_key = (doc_ids >= 0).unsqueeze(1);                   // [B, 1, T]
  torch::Tensor allowed = same_doc.logical_and(real_key).logical_and(causal.unsqueeze(0));
  allowed = allowed.logical_or((k == q).unsqueeze(0));
  return allowed.view({b, 1, t, t});
}

torch::Tensor PackedForward(model::Transformer& model, const torch::Tensor& input_ids,
                            const torch::Tensor& position_ids, const torch::Tensor& doc_ids,
                            bool checkpoint_layers) {
  const torch::Device device = model->model->embed_tokens->weight.device();
  torch::Tensor ids = input_ids.to(device);
  torch::Tensor h = model->model->embed_tokens(ids);
  auto [cos, sin] = model->model->rotary_emb(position_ids.to(device), h.scalar_type());
  torch::Tensor allowed = DocumentCausalMask(doc_ids.to(device), model->config().sliding_window);
  const bool record = checkpoint_layers && torch::GradMode::is_enabled();
  // The frozen embedding's output does not require grad; the checkpointed function would then not
  // be differentiated at all (torch's "None of the inputs have requires_grad" case).
  if (record) h = h.detach().requires_grad_(true);
  for (int64_t l = 0; l < model->config().num_hidden_layers; ++l) {
    model::DecoderLayerImpl& layer = model->layer(l);
    if (record) {
      h = CheckpointedLayer::apply(h, cos, sin, allowed, reinterpret_cast<int64_t>(&layer));
    } else {
      h = layer.forward(h, cos, sin, allowed, nullptr);
    }
  }
  h = model->model->norm(h);
  return model->lm_head ? model->lm_head(h) : torch::nn::functional::linear(h, model->model->embed_tokens->weight);
}

}  // namespace temper::train
