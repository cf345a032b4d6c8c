// NF4 dequantization (double-quantized absmax) on the GPU.
//
// Design note. Reference: DequantizeNf4 / DequantizeNf4Bf16 in libs/model/nf4.cc, matched bit for
// bit (nf4_cuda_test.cc). The work is a pure stream: read 0.5 byte + 1/64 byte per weight, write
// 2 (bf16) or 4 (fp32) bytes, so the target is copy bandwidth (DESIGN.md: >= 85% of a
// device-to-device copy). Each thread takes 8 packed bytes (one 8-byte load) = 16 weights, which
// lie in one 64-weight block, so it dequantizes that block's absmax once:
//   absmax = code8[absmax_q[b]] * absmax_scale[b / 256] + absmax_offset
// and writes 16 outputs as two (bf16) or four (fp32) 16-byte stores. The two float operations use
// __fmul_rn/__fadd_rn so nvcc cannot contract them into an FMA, which would round differently
// from the CPU reference (and from bitsandbytes, which does them in separate kernels). The 16-entry
// NF4 code sits in shared memory (indices diverge per lane; constant memory would serialize).
// The tail (numel not a multiple of 16, or unaligned pointers) takes a scalar path per element.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "libs/model/nf4_cuda.h"

namespace temper::model::cuda {
namespace {

__constant__ float kCode4[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

constexpr int kThreads = 256;
constexpr int kWeightsPerThread = 16;

__device__ __forceinline__ float BlockAbsmax(const Nf4DeviceView& q, int64_t block) {
  const float c = __ldg(&q.code8[__ldg(&q.absmax_q[block])]);
  return __fadd_rn(__fmul_rn(c, __ldg(&q.absmax_scale[block / 256])), q.absmax_offset);
}

__device__ __forceinline__ void Store(float* out, int64_t i, float v) { out[i] = v; }
__device__ __forceinline__ void Store(uint16_t* out, int64_t i, float v) {
  out[i] = __bfloat16_as_ushort(__float2bfloat16_rn(v));
}

__device__ __forceinline__ uint32_t PackBf16(float lo, float hi) {
  return static_cast<uint32_t>(__bfloat16_as_ushort(__float2bfloat16_rn(lo))) |
         (static_cast<uint32_t>(__bfloat16_as_ushort(__float2bfloat16_rn(hi))) << 16);
}

template <typename Out>
__global__ void __launch_bounds__(kThreads) Nf4DequantizeKernel(Nf4DeviceView q, Out* out,
                                                                bool vectorized) {
  __shared__ float code[16];
  if (threadIdx.x < 16) code[threadIdx.x] = kCode4[threadIdx.x];
  __syncthreads();

  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t first = t * kWeightsPerThread;
  if (first >= q.numel) return;
  const float absmax = BlockAbsmax(q, first / 64);

  if (vectorized && first + kWeightsPerThread <= q.numel) {
    const uint2 bytes = __ldg(reinterpret_cast<const uint2*>(q.packed) + t);
    float v[kWeightsPerThread];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const uint32_t word = j < 4 ? bytes.x : bytes.y;
      const uint32_t byte = (word >> (8 * (j % 4))) & 0xff;
      v[2 * j] = __fmul_rn(code[byte >> 4], absmax);
      v[2 * j + 1] = __fmul_rn(code[byte & 0x0f], absmax);
    }
    if constexpr (sizeof(Out) == 4) {
      float4* dst = reinterpret_cast<float4*>(out + first);
#pragma unroll
      for (int k = 0; k < 4; ++k) dst[k] = make_float4(v[4 * k], v[4 * k + 1], v[4 * k + 2], v[4 * k + 3]);
    } else {
      uint4* dst = reinterpret_cast<uint4*>(out + first);
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        dst[k] = make_uint4(PackBf16(v[8 * k], v[8 * k + 1]), PackBf16(v[8 * k + 2], v[8 * k + 3]),
                            PackBf16(v[8 * k + 4], v[8 * k + 5]), PackBf16(v[8 * k + 6], v[8 * k + 7]));
      }
    }
    return;
  }
  const int64_t last = first + kWeightsPerThread < q.numel ? first + kWeightsPerThread : q.numel;
  for (int64_t i = first; i < last; ++i) {
    const uint8_t byte = q.packed[i / 2];
    const uint8_t nibble = (i % 2 == 0) ? (byte >> 4) : (byte & 0x0f);
    Store(out, i, __fmul_rn(code[nibble], absmax));
  }
}

template <typename Out>
int Launch(const Nf4DeviceView& q, Out* out, void* stream) {
  if (q.numel <= 0) return 0;
  const int64_t threads_needed = (q.numel + kWeightsPerThread - 1) / kWeightsPerThread;
  const int64_t blocks = (threads_needed + kThreads - 1) / kThreads;
  const bool vectorized = reinterpret_cast<uintptr_t>(q.packed) % 8 == 0 &&
                          reinterpret_cast<uintptr_t>(out) % 16 == 0;
  Nf4DequantizeKernel<Out><<<static_cast<unsigned>(blocks), kThreads, 0,
                             static_cast<cudaStream_t>(stream)>>>(q, out, vectorized);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

int LaunchNf4DequantizeF32(const Nf4DeviceView& q, float* out, void* stream) {
  return Launch(q, out, stream);
}

int LaunchNf4DequantizeBf16(const Nf4DeviceView& q, uint16_t* out, void* stream) {
  return Launch(q, out, stream);
}

}  // namespace temper::model::cuda
