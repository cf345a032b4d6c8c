#include "libs/model/linear.h"

#include <cmath>
#include <cstring>

#if defined(TEMPER_WITH_CUDA)
#include <c10/cuda/CUDAStream.h>

#include "libs/model/nf4_cuda.h"
#endif

namespace temper::model {

LinearImpl::LinearImpl(int64_t in_features, int64_t out_features, bool bias)
    : in_features_(in_features), out_features_(out_features) {
  // Initialised like torch.nn.Linear; real weights come from a checkpoint.
  weight_ = register_parameter("weight", torch::empty({out_features, in_features}));
  torch::nn::init::kaiming_uniform_(weight_, std::sqrt(5.0));
  if (bias) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
    bias_ = register_parameter("bias", torch::empty({out_features}).uniform_(-bound, bound));
  }
}

torch::Tensor DequantizeNf4Tensor(const torch::Tensor& packed, const torch::Tensor& absmax_q,
                                  const torch::Tensor& absmax_scale, const torch::Tensor& code8,
                                  float absmax_offset, int64_t numel, at::IntArrayRef shape,
                                  torch::Dtype dtype) {
#if defined(TEMPER_WITH_CUDA)
  if (packed.is_cuda()) {
    const bool bf16 = dtype == torch::kBFloat16;
    torch::Tensor out = torch::empty(shape, packed.options().dtype(bf16 ? torch::kBFloat16 : torch::kFloat32));
    cuda::Nf4DeviceView view;
    view.packed = packed.data_ptr<uint8_t>();
    view.absmax_q = absmax_q.data_ptr<uint8_t>();
    view.absmax_scale = absmax_scale.data_ptr<float>();
    view.code8 = code8.data_ptr<float>();
    view.absmax_offset = absmax_offset;
    view.numel = numel;
    // On libtorch's current stream, so the kernel is ordered with the matmul that follows.
    void* stream = c10::cuda::getCurrentCUDAStream(packed.device().index()).stream();
    const int err = bf16 ? cuda::LaunchNf4DequantizeBf16(
                               view, reinterpret_cast<uint16_t*>(out.data_ptr()), stream)
                         : cuda::LaunchNf4DequantizeF32(view, out.data_ptr<float>(), stream);
    TORCH_CHECK(err == 0, "NF4 dequantization kernel failed to launch (cudaError ", err, ")");
    return bf16 ? out : out.to(dtype);
  }
#endif
  TORCH_CHECK(!packed.is_cuda(), "NF4 weight on CUDA but temper was built without TEMPER_WITH_CUDA");
  Nf4Tensor q;
  q.numel = numel;
  auto copy = [](const torch::Tensor& t, auto* vec) {
    torch::Tensor c = t.contiguous();
    vec->resize(c.numel());
    std::memcpy(vec->data(), c.data_ptr(), c.numel() * c.element_size());
  };
  copy(packed, &q.packed);
  copy(absmax_q, &q.absmax_q);
  copy(absmax_scale.to(torch::kFloat32), &q.absmax_scale);
  q.absmax_offset = absmax_offset;
  if (dtype == torch::kBFloat16) {
    torch::Tensor out = torch::empty(shape, torch::TensorOptions().dtype(torch::kBFloat16));
    DequantizeNf4Bf16(q, {reinterpret_cast<uint16_t*>(out.data_ptr()), static_cast<size_t>(numel)});
    return out;
  }
  torch::Tensor out = torch::empty(shape, torch::TensorOptions().dtype(torch::kFloat32));
  DequantizeNf4(q, {out.data_ptr<float>(), static_cast<size_t>(numel)});
  return out.to(dtype);
}

void LinearImpl::QuantizeBaseNf4() {
  if (is_nf4()) return;
  torch::NoGradGuard no_grad;
  compute_dtype_ = weight_.scalar_type();
  const torch::Device device = weight_.device();
  torch::Tensor w = weight_.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  Nf4Tensor q = QuantizeNf4({w.data_ptr<float>(), static_cast<size_t>(w.numel())},
                            {out_features_, in_features_});
  auto to_tensor = [&](const auto& vec, torch::Dtype dtype) {
    torch::Tensor t = torch::empty({static_cast<int64_t>(vec.size())}, torch::TensorOptions().dtype(dtype));
    std::memcpy(t.data_ptr(), vec.data(), vec.size() * sizeof(vec[0]));
    return t.to(device);
  };
  const auto& code = DynamicMap8Bit();
  nf4_packed_ = register_buffer("nf4_packed", to_tensor(q.packed, torch::kUInt8));
  nf4_absmax_q_ = register_buffer("nf4_absmax_q", to_tensor(q.absmax_q, torch::kUInt8));
  nf4_absmax_scale_ = register_buffer("nf4_absmax_scale", to_tensor(q.absmax_scale, torch::kFloat32));
  nf4_code8_ = register_buffer("nf4_code8", to_tensor(std::vector<float>(code.begin(), code.end()), torch::kFloat32));
  nf4_absmax_offset_ = q.absmax_offset;
  nf4_numel_ = q.numel;
  // Free the dense weight; the parameter stays registered (empty, frozen) so names are stable.
  weight_.set_data(torch::empty({0}, weight_.options()));
  weight_.set_requires_grad(false);
  if (bias_.defined()) bias_.set_requires_grad(false);
}

void LinearImpl::AttachLora(int64_t r, double scaling, double dropout,
                            std::optional<torch::Generator> generator) {
  torch::NoGradGuard no_grad;
  const torch::Dtype dtype = is_nf4() ? compute_dtype_ : weight_.scalar_type();
  const torch::Device device = is_nf4() ? nf4_packed_.device() : weight_.device();
  // PEFT: nn.init.kaiming_uniform_(lora_A.weight, a=math.sqrt(5)) -> U(-1/sqrt(in), 1/sqrt(in)).
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_features_));
  torch::Tensor a = torch::empty({r, in_features_}, torch::TensorOptions().dtype(torch::kFloat32));
  if (generator.has_value()) {
    a.uniform_(-bound, bound, *generator);
  } else {
    a.uniform_(-bound, bound);
  }
  lora_A_ = register_parameter("lora_A", a.to(device, dtype));
  lora_B_ = register_parameter("lora_B", torch::zeros({out_features_, r}, torch::TensorOptions().dtype(dtype).device(device)));
  lora_scaling_ = scaling;
  lora_dropout_ = dropout;
  weight_.set_requires_grad(false);
  if (bias_.defined()) bias_.set_requires_grad(false);
}

torch::Tensor LinearImpl::BaseWeight() const {
  if (!is_nf4()) return weight_;
  return DequantizeNf4Tensor(nf4_packed_, nf4_absmax_q_, nf4_absmax_scale_, nf4_code8_,
                             nf4_absmax_offset_, nf4_numel_, {out_features_, in_features_},
                             compute_dtype_);
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = torch::nn::functional::linear(x, BaseWeight(), bias_);
  if (has_lora()) {
    torch::Tensor h = x.to(lora_A_.scalar_type());
    if (lora_dropout_ > 0.0 && is_training()) h = torch::dropout(h, lora_dropout_, /*train=*/true);
    torch::Tensor delta = torch::matmul(torch::matmul(h, lora_A_.t()), lora_B_.t()) * lora_scaling_;
    y = y + delta.to(y.scalar_type());
  }
  return y;
}

}  // namespace temper::model
