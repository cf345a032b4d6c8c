// The CUDA NF4 dequantization kernel against the CPU reference, bit for bit (label gpu; skips
// with the reason when no GPU is usable).
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "libs/model/nf4.h"
#include "libs/model/nf4_cuda.h"

namespace temper::model {
namespace {

template <typename T>
T* ToDevice(const std::vector<T>& v, size_t extra_bytes = 0) {
  void* p = nullptr;
  if (cudaMalloc(&p, v.size() * sizeof(T) + extra_bytes + 16) != cudaSuccess) return nullptr;
  cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice);
  return static_cast<T*>(p);
}

class Nf4CudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess || n == 0) {
      GTEST_SKIP() << "no usable CUDA device (" << cudaGetErrorString(err) << ", count " << n << ")";
    }
  }
};

// Dequantizes `values` on the GPU with the output offset by `out_offset` elements (to exercise the
// unaligned path) and compares with the CPU reference.
void CheckMatches(const std::vector<float>& values, int out_offset) {
  Nf4Tensor q = QuantizeNf4(values, {static_cast<int64_t>(values.size())});
  std::vector<float> ref_f(values.size());
  std::vector<uint16_t> ref_b(values.size());
  DequantizeNf4(q, ref_f);
  DequantizeNf4Bf16(q, ref_b);

  std::vector<float> code(DynamicMap8Bit().begin(), DynamicMap8Bit().end());
  cuda::Nf4DeviceView view;
  view.packed = ToDevice(q.packed);
  view.absmax_q = ToDevice(q.absmax_q);
  view.absmax_scale = ToDevice(q.absmax_scale);
  view.code8 = ToDevice(code);
  view.absmax_offset = q.absmax_offset;
  view.numel = q.numel;
  ASSERT_NE(view.packed, nullptr);
  float* out_f = nullptr;
  uint16_t* out_b = nullptr;
  ASSERT_EQ(cudaMalloc(&out_f, (values.size() + out_offset) * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&out_b, (values.size() + out_offset) * sizeof(uint16_t)), cudaSuccess);
  ASSERT_EQ(cuda::LaunchNf4DequantizeF32(view, out_f + out_offset, nullptr), 0);
  ASSERT_EQ(cuda::LaunchNf4DequantizeBf16(view, out_b + out_offset, nullptr), 0);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> got_f(values.size());
  std::vector<uint16_t> got_b(values.size());
  cudaMemcpy(got_f.data(), out_f + out_offset, got_f.size() * sizeof(float), cudaMemcpyDeviceToHost);
  cudaMemcpy(got_b.data(), out_b + out_offset, got_b.size() * 2, cudaMemcpyDeviceToHost);
  size_t bad_f = 0, bad_b = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    uint32_t a, b;
    std::memcpy(&a, &got_f[i], 4);
    std::memcpy(&b, &ref_f[i], 4);
    if (a != b && bad_f++ < 5) ADD_FAILURE() << "fp32 element " << i << ": " << got_f[i] << " vs " << ref_f[i];
    if (got_b[i] != ref_b[i] && bad_b++ < 5) ADD_FAILURE() << "bf16 element " << i;
  }
  EXPECT_EQ(bad_f, 0u);
  EXPECT_EQ(bad_b, 0u);
  for (const void* p : {static_cast<const void*>(view.packed), static_cast<const void*>(view.absmax_q),
                        static_cast<const void*>(view.absmax_scale), static_cast<const void*>(view.code8),
                        static_cast<const void*>(out_f), static_cast<const void*>(out_b)}) {
    cudaFree(const_cast<void*>(p));
  }
}

std::vector<float> Normal(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST_F(Nf4CudaTest, MatchesReferenceAligned) { CheckMatches(Normal(4096 * 1024, 1), 0); }

TEST_F(Nf4CudaTest, MatchesReferenceOddSizeAndUnalignedOutput) {
  std::vector<float> v = Normal(64 * 300 + 37, 2);
  for (int i = 0; i < 64; ++i) v[64 + i] = 0.0f;  // an all-zero block
  CheckMatches(v, 0);
  CheckMatches(v, 1);
}

TEST_F(Nf4CudaTest, Bandwidth) {
  // Not a pass/fail check: prints dequantization bandwidth next to a device-to-device copy.
  const size_t n = size_t{1} << 28;  // 268M weights: an 8B model's largest matrices are ~58M
  std::vector<float> v = Normal(1 << 20, 3);
  Nf4Tensor small = QuantizeNf4(v, {static_cast<int64_t>(v.size())});
  // Tile the small quantized tensor to n weights (contents do not matter for bandwidth).
  std::vector<uint8_t> packed(n / 2), aq(n / 64);
  std::vector<float> scale((n / 64 + 255) / 256, small.absmax_scale[0]);
  for (size_t i = 0; i < packed.size(); ++i) packed[i] = small.packed[i % small.packed.size()];
  for (size_t i = 0; i < aq.size(); ++i) aq[i] = small.absmax_q[i % small.absmax_q.size()];
  std::vector<float> code(DynamicMap8Bit().begin(), DynamicMap8Bit().end());
  cuda::Nf4DeviceView view{ToDevice(packed), ToDevice(aq), ToDevice(scale), ToDevice(code),
                           small.absmax_offset, static_cast<int64_t>(n)};
  uint16_t* out = nullptr;
  uint16_t* copy_dst = nullptr;
  ASSERT_EQ(cudaMalloc(&out, n * 2), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&copy_dst, n * 2), cudaSuccess);
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  const int iters = 20;
  cuda::LaunchNf4DequantizeBf16(view, out, nullptr);
  cudaEventRecord(start);
  for (int i = 0; i < iters; ++i) cuda::LaunchNf4DequantizeBf16(view, out, nullptr);
  cudaEventRecord(stop);
  cudaEventSynchronize(stop);
  float ms_dq = 0;
  cudaEventElapsedTime(&ms_dq, start, stop);
  cudaMemcpy(copy_dst, out, n * 2, cudaMemcpyDeviceToDevice);
  cudaEventRecord(start);
  for (int i = 0; i < iters; ++i) cudaMemcpy(copy_dst, out, n * 2, cudaMemcpyDeviceToDevice);
  cudaEventRecord(stop);
  cudaEventSynchronize(stop);
  float ms_copy = 0;
  cudaEventElapsedTime(&ms_copy, start, stop);
  const double dq_bytes = n * 0.5 + n / 64.0 + n * 2.0;  // read packed + absmax_q, write bf16
  const double copy_bytes = n * 2.0 * 2;                // read + write
  const double dq_gbs = dq_bytes * iters / (ms_dq * 1e6), copy_gbs = copy_bytes * iters / (ms_copy * 1e6);
  std::printf("NF4 dequant bf16: %.1f GB/s (%.3f ms / %zu weights); D2D copy: %.1f GB/s; ratio %.2f\n",
              dq_gbs, ms_dq / iters, n, copy_gbs, dq_gbs / copy_gbs);
  RecordProperty("nf4_dequant_gbs", std::to_string(dq_gbs));
  RecordProperty("d2d_copy_gbs", std::to_string(copy_gbs));
  cudaFree(out);
  cudaFree(copy_dst);
  for (const void* p : {static_cast<const void*>(view.packed), static_cast<const void*>(view.absmax_q),
                        static_cast<const void*>(view.absmax_scale), static_cast<const void*>(view.code8)}) {
    cudaFree(const_cast<void*>(p));
  }
}

}  // namespace
}  // namespace temper::model
