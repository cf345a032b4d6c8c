// The edge between libtorch and the rest of libs/model: safetensors views to tensors and back,
// and libtorch's exceptions to Status (STYLE.md 1).
#pragma once

#include <string>
#include <utility>

#include <torch/torch.h>

#include "libs/common/status.h"
#include "libs/model/safetensors.h"

namespace temper::model {

// SDPA (at::scaled_dot_product_attention) arrived in libtorch 2.0; 1.13 (Debian) lacks it.
#if (TORCH_VERSION_MAJOR > 2) || (TORCH_VERSION_MAJOR == 2)
#define TEMPER_TORCH_HAS_SDPA 1
#else
#define TEMPER_TORCH_HAS_SDPA 0
#endif

// The torch dtype of a safetensors dtype. Unimplemented for the FP8 types on libtorch < 2.1.
absl::StatusOr<torch::Dtype> ToTorchDtype(Dtype dtype);
absl::StatusOr<Dtype> FromTorchDtype(torch::Dtype dtype);

// A CPU tensor holding a copy of the view's bytes.
absl::StatusOr<torch::Tensor> ToTorch(const TensorView& view);
// Adds a tensor (copied to CPU, made contiguous) to a writer.
absl::Status AddTensor(SafetensorsWriter& writer, const std::string& name, const torch::Tensor& t);

// Parses "float32" / "bfloat16" / "float16" (also "fp32", "bf16", "fp16").
absl::StatusOr<torch::Dtype> ParseFloatDtype(const std::string& name);

// Runs fn(), turning a c10::Error or std::exception into an Internal status that names `what`.
template <typename Fn>
absl::Status CatchTorch(const std::string& what, Fn&& fn) {
  try {
    std::forward<Fn>(fn)();
    return absl::OkStatus();
  } catch (const c10::Error& e) {
    return absl::InternalError(what + ": " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return absl::InternalError(what + ": " + e.what());
  }
}

}  // namespace temper::model
