#include "libs/model/torch_util.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace temper::model {

absl::StatusOr<torch::Dtype> ToTorchDtype(Dtype dtype) {
  switch (dtype) {
    case Dtype::kBool: return torch::kBool;
    case Dtype::kU8: return torch::kUInt8;
    case Dtype::kI8: return torch::kInt8;
    case Dtype::kI16: return torch::kInt16;
    case Dtype::kF16: return torch::kFloat16;
    case Dtype::kBF16: return torch::kBFloat16;
    case Dtype::kI32: return torch::kInt32;
    case Dtype::kF32: return torch::kFloat32;
    case Dtype::kF64: return torch::kFloat64;
    case Dtype::kI64: return torch::kInt64;
    default: break;
  }
  return absl::UnimplementedError(
      absl::StrCat("no torch dtype for safetensors dtype ", std::string(DtypeName(dtype))));
}

absl::StatusOr<Dtype> FromTorchDtype(torch::Dtype dtype) {
  switch (dtype) {
    case torch::kBool: return Dtype::kBool;
    case torch::kUInt8: return Dtype::kU8;
    case torch::kInt8: return Dtype::kI8;
    case torch::kInt16: return Dtype::kI16;
    case torch::kFloat16: return Dtype::kF16;
    case torch::kBFloat16: return Dtype::kBF16;
    case torch::kInt32: return Dtype::kI32;
    case torch::kFloat32: return Dtype::kF32;
    case torch::kFloat64: return Dtype::kF64;
    case torch::kInt64: return Dtype::kI64;
    default: break;
  }
  return absl::UnimplementedError(absl::StrCat("no safetensors dtype for torch dtype ",
                                               std::string(c10::toString(dtype))));
}

absl::StatusOr<torch::Tensor> ToTorch(const TensorView& view) {
  ASSIGN_OR_RETURN(torch::Dtype dtype, ToTorchDtype(view.dtype));
  torch::Tensor t;
  RETURN_IF_ERROR(CatchTorch("tensor " + view.name, [&] {
    t = torch::empty(view.shape, torch::TensorOptions().dtype(dtype));
    // memcpy rather than from_blob: the mapped bytes need not be aligned for the element type.
    if (!view.data.empty()) std::memcpy(t.data_ptr(), view.data.data(), view.data.size());
  }));
  return t;
}

absl::Status AddTensor(SafetensorsWriter& writer, const std::string& name, const torch::Tensor& t) {
  ASSIGN_OR_RETURN(Dtype dtype, FromTorchDtype(t.scalar_type()));
  torch::Tensor c;
  RETURN_IF_ERROR(CatchTorch("tensor " + name, [&] { c = t.detach().to(torch::kCPU).contiguous(); }));
  std::vector<int64_t> shape(c.sizes().begin(), c.sizes().end());
  return writer.Add(name, dtype, std::move(shape),
                    {static_cast<const uint8_t*>(c.data_ptr()), static_cast<size_t>(c.numel() * c.element_size())});
}

absl::StatusOr<torch::Dtype> ParseFloatDtype(const std::string& name) {
  if (name == "float32" || name == "fp32" || name == "float") return torch::kFloat32;
  if (name == "bfloat16" || name == "bf16") return torch::kBFloat16;
  if (name == "float16" || name == "fp16" || name == "half") return torch::kFloat16;
  return absl::InvalidArgumentError(absl::StrCat("unknown float dtype \"", name, "\""));
}

}  // namespace temper::model
