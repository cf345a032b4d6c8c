#include "libs/model/nf4.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>

namespace temper::model {

namespace {

// torch.linspace(start, end, steps) in float32 as PyTorch's CPU kernel computes it
// (aten/src/ATen/native/cpu/RangeFactoriesKernel.cpp): the first half counts up from start, the
// second half down from end, `start + step * i` in float. That kernel is compiled with -mfma for
// the AVX2/AVX-512 builds that x86-64 machines dispatch to, so the compiler fuses the multiply and
// add: one rounding, not two. std::fma reproduces it: the 256-entry map then equals the one torch
// 2.11 computed for the fixture bit for bit (with two roundings, 42 entries were one ulp off).
std::vector<float> LinspaceF32(float start, float end, int steps) {
  std::vector<float> out(steps);
  const float step = (end - start) / static_cast<float>(steps - 1);
  const int halfway = steps / 2;
  for (int i = 0; i < steps; ++i) {
    out[i] = i < halfway ? std::fma(step, static_cast<float>(i), start)
                         : std::fma(-step, static_cast<float>(steps - i - 1), end);
  }
  return out;
}

std::array<float, 256> MakeDynamicMap() {
  // create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): for exponent i in 0..6,
  // 2^i means of a linspace(0.1, 1, 2^i + 1), scaled by 10^(i-6), both signs; then 0 and 1.
  std::vector<float> data;
  for (int i = 0; i < 7; ++i) {
    const int fraction_items = (1 << i) + 1;
    std::vector<float> b = LinspaceF32(0.1f, 1.0f, fraction_items);
    const float scale = static_cast<float>(std::pow(10.0, -6 + i));
    std::vector<float> means;
    for (int j = 0; j + 1 < fraction_items; ++j) means.push_back((b[j] + b[j + 1]) / 2.0f);
    for (float m : means) data.push_back(scale * m);
    for (float m : means) data.push_back(-scale * m);
  }
  data.push_back(0.0f);
  data.push_back(1.0f);
  assert(data.size() == 256);
  std::sort(data.begin(), data.end());
  std::array<float, 256> out{};
  std::copy(data.begin(), data.end(), out.begin());
  return out;
}

}  // namespace

const std::array<float, 256>& DynamicMap8Bit() {
  static const std::array<float, 256> kMap = MakeDynamicMap();
  return kMap;
}

uint8_t QuantizeNf4Value(float x) {
  // bitsandbytes csrc/kernels.cu dQuantizeNF4: a decision tree over the code's midpoints.
  if (x > 0.03979014977812767f) {
    if (x > 0.3893125355243683f) {
      if (x > 0.6427869200706482f) return x > 0.8614784181118011f ? 0b1111 : 0b1110;
      return x > 0.5016634166240692f ? 0b1101 : 0b1100;
    }
    if (x > 0.2035212516784668f) return x > 0.2920137718319893f ? 0b1011 : 0b1010;
    return x > 0.1202552504837513f ? 0b1001 : 0b1000;
  }
  if (x > -0.33967943489551544f) {
    if (x > -0.13791173323988914f) return x > -0.045525018125772476f ? 0b0111 : 0b0110;
    return x > -0.23460740596055984f ? 0b0101 : 0b0100;
  }
  if (x > -0.6106329262256622f) return x > -0.4599952697753906f ? 0b0011 : 0b0010;
  return x > -0.8480964004993439f ? 0b0001 : 0b0000;
}

uint8_t QuantizeDynamic8(const std::array<float, 256>& code, float x) {
  // bitsandbytes dQuantize<STOCHASTIC=0>, line for line.
  int pivot = 127;
  int upper_pivot = 255;
  int lower_pivot = 0;
  float lower = -1.0f;
  float upper = 1.0f;
  float val = code[pivot];
  for (int i = 64; i > 0; i >>= 1) {
    if (x > val) {
      lower_pivot = pivot;
      lower = val;
      pivot += i;
    } else {
      upper_pivot = pivot;
      upper = val;
      pivot -= i;
    }
    val = code[pivot];
  }
  if (upper_pivot == 255) upper = code[upper_pivot];
  if (lower_pivot == 0) lower = code[lower_pivot];
  if (x > val) {
    const float midpoint = (upper + val) * 0.5f;
    return static_cast<uint8_t>(x > midpoint ? upper_pivot : pivot);
  }
  const float midpoint = (lower + val) * 0.5f;
  return static_cast<uint8_t>(x < midpoint ? lower_pivot : pivot);
}

uint16_t FloatToBf16(float value) {
  uint32_t bits = std::bit_cast<uint32_t>(value);
  if (std::isnan(value)) return static_cast<uint16_t>((bits >> 16) | 0x0040);
  const uint32_t rounding = 0x7fff + ((bits >> 16) & 1);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

float Bf16ToFloat(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

bool Nf4Tensor::Valid() const {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return false;
    n *= d;
  }
  return n == numel && static_cast<int64_t>(packed.size()) == (numel + 1) / 2 &&
         static_cast<int64_t>(absmax_q.size()) == num_blocks() &&
         static_cast<int64_t>(absmax_scale.size()) == num_groups();
}

Nf4Tensor QuantizeNf4(std::span<const float> values, std::vector<int64_t> shape) {
  Nf4Tensor q;
  q.shape = std::move(shape);
  q.numel = static_cast<int64_t>(values.size());
  q.packed.assign((q.numel + 1) / 2, 0);
  const int64_t blocks = q.num_blocks();

  // First level: absmax per block of 64, codes via x * (1 / absmax).
  std::vector<float> absmax(blocks, 0.0f);
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * kNf4BlockSize;
    const int64_t end = std::min(q.numel, begin + kNf4BlockSize);
    float m = 0.0f;
    for (int64_t i = begin; i < end; ++i) m = std::max(m, std::fabs(values[i]));
    absmax[b] = m;
    const float inv = 1.0f / m;  // inf for an all-zero block; 0 * inf = NaN -> code 0, as bnb
    for (int64_t i = begin; i < end; ++i) {
      const uint8_t code = QuantizeNf4Value(values[i] * inv);
      q.packed[i / 2] |= (i % 2 == 0) ? static_cast<uint8_t>(code << 4) : code;
    }
  }

  // Second level: absmax - mean, blockwise 8-bit (dynamic map) in groups of 256.
  double sum = 0.0;
  for (float a : absmax) sum += a;
  q.absmax_offset = blocks > 0 ? static_cast<float>(sum / static_cast<double>(blocks)) : 0.0f;
  const auto& code = DynamicMap8Bit();
  q.absmax_q.assign(blocks, 0);
  q.absmax_scale.assign(q.num_groups(), 0.0f);
  for (int64_t g = 0; g < q.num_groups(); ++g) {
    const int64_t begin = g * kNf4AbsmaxGroupSize;
    const int64_t end = std::min(blocks, begin + kNf4AbsmaxGroupSize);
    float m = 0.0f;
    for (int64_t b = begin; b < end; ++b) m = std::max(m, std::fabs(absmax[b] - q.absmax_offset));
    q.absmax_scale[g] = m;
    const float inv = 1.0f / m;
    for (int64_t b = begin; b < end; ++b) {
      q.absmax_q[b] = QuantizeDynamic8(code, (absmax[b] - q.absmax_offset) * inv);
    }
  }
  return q;
}

std::vector<float> DequantizeNf4Absmax(const Nf4Tensor& q) {
  const auto& code = DynamicMap8Bit();
  std::vector<float> absmax(q.num_blocks());
  for (int64_t b = 0; b < q.num_blocks(); ++b) {
    const float scaled = code[q.absmax_q[b]] * q.absmax_scale[b / kNf4AbsmaxGroupSize];
    absmax[b] = scaled + q.absmax_offset;
  }
  return absmax;
}

void DequantizeNf4(const Nf4Tensor& q, std::span<float> out) {
  assert(static_cast<int64_t>(out.size()) == q.numel);
  const std::vector<float> absmax = DequantizeNf4Absmax(q);
  for (int64_t i = 0; i < q.numel; ++i) {
    const uint8_t byte = q.packed[i / 2];
    const uint8_t nibble = (i % 2 == 0) ? (byte >> 4) : (byte & 0x0f);
    out[i] = kNf4Code[nibble] * absmax[i / kNf4BlockSize];
  }
}

void DequantizeNf4Bf16(const Nf4Tensor& q, std::span<uint16_t> out) {
  assert(static_cast<int64_t>(out.size()) == q.numel);
  const std::vector<float> absmax = DequantizeNf4Absmax(q);
  for (int64_t i = 0; i < q.numel; ++i) {
    const uint8_t byte = q.packed[i / 2];
    const uint8_t nibble = (i % 2 == 0) ? (byte >> 4) : (byte & 0x0f);
    out[i] = FloatToBf16(kNf4Code[nibble] * absmax[i / kNf4BlockSize]);
  }
}

}  // namespace temper::model
