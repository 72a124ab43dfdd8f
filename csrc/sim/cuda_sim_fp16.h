// The CPU SIMT emulator's stand-ins for CUDA's cuda_fp16.h and cuda_bf16.h:
// the 16-bit storage types __half and __nv_bfloat16 and their explicit
// conversions, with the semantics of CUDA's: round to nearest even,
// subnormals kept, a NaN to the canonical NaN (0x7fff, or 0x7fffffff from
// __half2float), except that __bfloat162float keeps a NaN's bits.
//
// Torch compiles CUDA code with __CUDA_NO_HALF_OPERATORS__,
// __CUDA_NO_HALF_CONVERSIONS__ and __CUDA_NO_BFLOAT16_CONVERSIONS__, so the
// kernels may use only the explicit functions; these types have no implicit
// conversions and no arithmetic, so that a kernel relying on them fails to
// build here too, not only in the CUDA build. Host and kernel code alike may
// call the functions, as CUDA's are __host__ __device__.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace fastlstm::sim::detail {

inline uint32_t float_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

inline float bits_float(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// `kept` rounded to nearest even by the bits shifted out of it: `dropped`,
// whose half-way value is `half_way`.
inline uint32_t round_nearest_even(uint32_t kept, uint32_t dropped, uint32_t half_way) {
  const bool up = dropped > half_way || (dropped == half_way && (kept & 1));
  return kept + up;
}

constexpr uint16_t kCanonicalNan16 = 0x7fff;  // CUDA's CUDART_NAN_FP16 and CUDART_NAN_BF16

// IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
inline uint16_t float_to_half_bits(float value) {
  const uint32_t bits = float_bits(value);
  const uint32_t sign = (bits >> 16) & 0x8000u, magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return kCanonicalNan16;
  // From 65520, half-way between the largest half (65504) and 2^16, up to inf.
  if (magnitude >= 0x477ff000u) return uint16_t(sign | 0x7c00u);
  if (magnitude >= 0x38800000u) {  // 2^-14 and up: normal halves
    // Rebiasing the exponent (127 -> 15) keeps the float's bit order, and a
    // rounding carry into the exponent gives the next binade, as it should.
    const uint32_t rebiased = magnitude - (uint32_t(127 - 15) << 23);
    return uint16_t(sign | round_nearest_even(rebiased >> 13, rebiased & 0x1fffu, 0x1000u));
  }
  // Up to 2^-25, half of the smallest subnormal: a tie with 0, which is even.
  if (magnitude <= 0x33000000u) return uint16_t(sign);
  // Subnormal halves count units of 2^-24; a float of exponent field e has
  // its 24-bit significand in units of 2^(e - 150), so shift by 126 - e.
  const uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126u - (magnitude >> 23);
  const uint32_t units = round_nearest_even(significand >> shift, significand & ((1u << shift) - 1),
                                            1u << (shift - 1));
  return uint16_t(sign | units);  // a carry out of the subnormals gives 2^-14, correctly
}

inline float half_bits_to_float(uint16_t half) {
  const uint32_t sign = uint32_t(half & 0x8000u) << 16;
  const uint32_t exponent = (half >> 10) & 0x1fu, mantissa = half & 0x3ffu;
  if (exponent == 0x1f) return bits_float(mantissa ? 0x7fffffffu : sign | 0x7f800000u);
  if (exponent == 0) return bits_float(sign | float_bits(float(mantissa) * 0x1p-24f));
  return bits_float(sign | (exponent + 127 - 15) << 23 | mantissa << 13);
}

// bfloat16 is the upper half of a float.
inline uint16_t float_to_bfloat16_bits(float value) {
  const uint32_t bits = float_bits(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return kCanonicalNan16;
  return uint16_t(round_nearest_even(bits >> 16, bits & 0xffffu, 0x8000u));
}

inline float bfloat16_bits_to_float(uint16_t bfloat16) {
  return bits_float(uint32_t(bfloat16) << 16);
}

}  // namespace fastlstm::sim::detail

// Default construction leaves the value indeterminate, as in CUDA; `{}`
// gives +0. The bits are public only because GCC warns (-Wclass-memaccess)
// about memcpy into a class with private members, and memcpy is how kernels
// move these types' bits; CUDA's __x is protected, so kernels must not name it.
struct alignas(2) __half {
  uint16_t __x;
};

struct alignas(2) __nv_bfloat16 {
  uint16_t __x;
};

using half = __half;
using nv_bfloat16 = __nv_bfloat16;

static_assert(sizeof(__half) == 2 && std::is_trivially_copyable_v<__half> &&
              std::is_trivially_default_constructible_v<__half> &&
              std::is_standard_layout_v<__half>);
static_assert(sizeof(__nv_bfloat16) == 2 && std::is_trivially_copyable_v<__nv_bfloat16> &&
              std::is_trivially_default_constructible_v<__nv_bfloat16> &&
              std::is_standard_layout_v<__nv_bfloat16>);

inline __half __float2half_rn(float value) {
  return __half{::fastlstm::sim::detail::float_to_half_bits(value)};
}
inline __half __float2half(float value) { return __float2half_rn(value); }
inline float __half2float(__half value) {
  return ::fastlstm::sim::detail::half_bits_to_float(value.__x);
}
inline unsigned short __half_as_ushort(__half value) { return value.__x; }
inline __half __ushort_as_half(unsigned short bits) { return __half{bits}; }

inline __nv_bfloat16 __float2bfloat16_rn(float value) {
  return __nv_bfloat16{::fastlstm::sim::detail::float_to_bfloat16_bits(value)};
}
inline __nv_bfloat16 __float2bfloat16(float value) { return __float2bfloat16_rn(value); }
inline float __bfloat162float(__nv_bfloat16 value) {
  return ::fastlstm::sim::detail::bfloat16_bits_to_float(value.__x);
}
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 value) { return value.__x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short bits) { return __nv_bfloat16{bits}; }
