// The linear layer every projection of the transformer uses: y = x W^T (+ b), where the base
// weight W is either dense or frozen in NF4 (dequantized on the fly, libs/model/nf4.h), plus an
// optional LoRA branch (dropout(x) A^T B^T * scaling, as PEFT's lora.Linear). The model builds
// plain dense Linears; quantization and LoRA are applied from outside (QuantizeBaseNf4 here,
// ApplyLora in lora.h), as torchtitan applies float8 or parallelism to a finished model.
// Not thread-safe for mutation; forward is as thread-safe as libtorch modules are.
#pragma once

#include <cstdint>
#include <optional>

#include <torch/torch.h>

#include "libs/model/nf4.h"

namespace temper::model {

class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in_features, int64_t out_features, bool bias);

  torch::Tensor forward(const torch::Tensor& x);

  // Replaces the dense weight by its NF4 quantization (frozen; the bias, if any, stays dense and
  // frozen). The NF4 arrays become buffers, so .to(device) moves them. Dequantization uses the
  // CUDA kernel for CUDA tensors (when built with TEMPER_WITH_CUDA) and the CPU reference on CPU.
  void QuantizeBaseNf4();
  bool is_nf4() const { return nf4_numel_ > 0; }

  // Adds LoRA factors A [r, in] (kaiming-uniform, a = sqrt(5), as PEFT) and B [out, r] (zeros),
  // freezing the base. `generator` seeds A's initialisation when defined.
  void AttachLora(int64_t r, double scaling, double dropout, std::optional<torch::Generator> generator);
  bool has_lora() const { return lora_A_.defined(); }

  // The dense base weight [out, in] (dequantized when NF4), in the module's compute dtype.
  torch::Tensor BaseWeight() const;

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }
  torch::Tensor& weight() { return weight_; }
  torch::Tensor& bias() { return bias_; }
  torch::Tensor& lora_A() { return lora_A_; }
  torch::Tensor& lora_B() { return lora_B_; }
  double lora_scaling() const { return lora_scaling_; }

 private:
  int64_t in_features_;
  int64_t out_features_;
  torch::Tensor weight_;  // [out, in]; empty once quantized
  torch::Tensor bias_;    // [out] or undefined
  // NF4 state (buffers): packed nibbles, per-block 8-bit absmax, per-group scales, the 8-bit map.
  torch::Tensor nf4_packed_, nf4_absmax_q_, nf4_absmax_scale_, nf4_code8_;
  float nf4_absmax_offset_ = 0.0f;
  int64_t nf4_numel_ = 0;
  torch::Dtype compute_dtype_ = torch::kFloat32;
  // LoRA
  torch::Tensor lora_A_, lora_B_;
  double lora_scaling_ = 0.0;
  double lora_dropout_ = 0.0;
};
TORCH_MODULE(Linear);

// Dequantizes NF4 buffers (any device) to a [out, in] tensor of `dtype` on the same device.
torch::Tensor DequantizeNf4Tensor(const torch::Tensor& packed, const torch::Tensor& absmax_q,
                                  const torch::Tensor& absmax_scale, const torch::Tensor& code8,
                                  float absmax_offset, int64_t numel, at::IntArrayRef shape,
                                  torch::Dtype dtype);

}  // namespace temper::model
