// NF4 ("4-bit NormalFloat") with double quantization, as QLoRA (Dettmers et al. 2023) defines it
// and bitsandbytes implements it (functional.quantize_4bit(quant_type="nf4",
// compress_statistics=True) and its CUDA kernels). Plain C++: this is the reference the CUDA
// kernel (nf4_dequant.cu) is checked against bit for bit.
//
// Layout of a quantized tensor of n elements (flattened row-major, as bitsandbytes does):
//   packed       ceil(n/2) bytes; element 2i in the HIGH nibble of byte i, element 2i+1 in the low
//                nibble (a missing last element is code 0 in the low nibble).
//   absmax_q     one byte per block of 64 elements: the block's absmax minus `absmax_offset`,
//                divided by its group's `absmax_scale`, as an index into the signed dynamic 8-bit
//                map (bitsandbytes' create_dynamic_map(signed=True)).
//   absmax_scale one float per group of 256 blocks: the largest |absmax - offset| of the group.
//   absmax_offset  the mean of all block absmaxes.
// Dequantization, in float32 with no fused multiply-add, exactly as bitsandbytes' kernels:
//   absmax[b] = DynamicMap8Bit()[absmax_q[b]] * absmax_scale[b / 256] + absmax_offset
//   w[i]      = kNf4Code[nibble(i)] * absmax[i / 64]
// Quantization follows bitsandbytes' CUDA kernels: x * (1 / absmax) through dQuantizeNF4's
// decision tree (thresholds are the midpoints of the code), and the 8-bit absmax through
// dQuantize<0>'s binary search with midpoint rounding. Only the offset differs in rounding:
// torch's float32 mean versus our double-accumulated mean rounded to float.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace temper::model {

inline constexpr int64_t kNf4BlockSize = 64;
inline constexpr int64_t kNf4AbsmaxGroupSize = 256;

// bitsandbytes' NF4 code (functional.get_4bit_type("nf4")), index = 4-bit code.
inline constexpr std::array<float, 16> kNf4Code = {
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

// bitsandbytes' create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8), sorted: 256
// values in [-1, 1] with 0 and 1 exact, computed in float32 as torch computes it (linspace's
// CPU kernel, whose `start + step * i` is a fused multiply-add on x86-64; float means, float
// products). Equal, entry for entry, to the map torch 2.11 computes (model_fixture_test).
const std::array<float, 256>& DynamicMap8Bit();

// The NF4 code of a value already divided by its block's absmax (bitsandbytes dQuantizeNF4).
// NaN (an all-zero block: 0 * inf) maps to code 0, as there.
uint8_t QuantizeNf4Value(float normalized);
// The index into `code` nearest to x (bitsandbytes dQuantize<0>; code sorted ascending).
uint8_t QuantizeDynamic8(const std::array<float, 256>& code, float x);

// float <-> bfloat16 bits. FloatToBf16 rounds to nearest even (NaN stays a quiet NaN), as
// __float2bfloat16_rn and torch's .to(torch.bfloat16) do.
uint16_t FloatToBf16(float value);
float Bf16ToFloat(uint16_t bits);

// A tensor quantized to NF4 with double-quantized absmax. Plain data: copyable, no invariants
// beyond the sizes above (Nf4Tensor::Valid checks them).
struct Nf4Tensor {
  std::vector<int64_t> shape;
  int64_t numel = 0;
  std::vector<uint8_t> packed;
  std::vector<uint8_t> absmax_q;
  std::vector<float> absmax_scale;
  float absmax_offset = 0.0f;

  int64_t num_blocks() const { return (numel + kNf4BlockSize - 1) / kNf4BlockSize; }
  int64_t num_groups() const { return (num_blocks() + kNf4AbsmaxGroupSize - 1) / kNf4AbsmaxGroupSize; }
  // True when the vectors have the sizes numel implies.
  bool Valid() const;
};

// Quantizes `values` (numel(shape) floats, row-major). REQUIRES: values.size() == numel(shape).
Nf4Tensor QuantizeNf4(std::span<const float> values, std::vector<int64_t> shape);

// The float absmax of each block (double quantization undone), as bitsandbytes'
// dequantize_blockwise(absmax_q, state2) + offset.
std::vector<float> DequantizeNf4Absmax(const Nf4Tensor& q);

// Dequantizes into float32 / bfloat16 bits. REQUIRES: out.size() == q.numel.
void DequantizeNf4(const Nf4Tensor& q, std::span<float> out);
void DequantizeNf4Bf16(const Nf4Tensor& q, std::span<uint16_t> out);

}  // namespace temper::model
