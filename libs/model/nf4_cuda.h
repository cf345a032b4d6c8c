// Host API of the NF4 dequantization kernel (libs/model/nf4_dequant.cu). Plain C++: no CUDA or
// torch headers, so callers compile with the host compiler. Only linked when TEMPER_WITH_CUDA.
#pragma once

#include <cstdint>

namespace temper::model::cuda {

// An Nf4Tensor (libs/model/nf4.h) whose arrays live in device memory.
struct Nf4DeviceView {
  const uint8_t* packed = nullptr;      // (numel + 1) / 2 bytes
  const uint8_t* absmax_q = nullptr;    // one per block of 64
  const float* absmax_scale = nullptr;  // one per group of 256 blocks
  const float* code8 = nullptr;         // the 256-entry DynamicMap8Bit(), in device memory
  float absmax_offset = 0.0f;
  int64_t numel = 0;
};

// Dequantizes into `out` (numel elements of device memory) on `stream` (a cudaStream_t; nullptr
// for the default stream). Asynchronous; returns the launch's cudaError_t as an int (0 = success).
// The result equals DequantizeNf4 / DequantizeNf4Bf16 bit for bit.
int LaunchNf4DequantizeF32(const Nf4DeviceView& q, float* out, void* stream);
int LaunchNf4DequantizeBf16(const Nf4DeviceView& q, uint16_t* out, void* stream);

}  // namespace temper::model::cuda
