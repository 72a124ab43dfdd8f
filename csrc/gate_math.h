// The LSTM cell equations, written once for every backend: the CPU backend,
// the CUDA kernels and the CPU SIMT emulator all include this header, so a
// change to the math lands everywhere at once. Gate order is PyTorch's:
// rows [0,H) input, [H,2H) forget, [2H,3H) cell candidate, [3H,4H) output.
#pragma once

#if defined(__CUDACC_RTC__)
// NVRTC has no C library headers: its math and memcpy are built in, and the
// fixed-width integers come from libcu++.
#include <cuda/std/cstdint>
using ::cuda::std::int32_t;
using ::cuda::std::int64_t;
using ::cuda::std::uint32_t;
using ::cuda::std::uint64_t;
#else
#include <math.h>
#include <stdint.h>
#include <string.h>
#endif

#if defined(__CUDACC__)
#define FASTLSTM_HD __host__ __device__ __forceinline__
#elif defined(__GNUC__)
#define FASTLSTM_HD inline __attribute__((always_inline))
#else
#define FASTLSTM_HD inline
#endif

namespace fastlstm {

enum Gate : int { kGateI = 0, kGateF = 1, kGateG = 2, kGateO = 3, kNumGates = 4 };

// Host functions are forced inline: the CPU engine compiles them into code
// for one instruction set at a time (csrc/cpu/engine/), which must not call
// an out-of-line copy built for another.
#if !defined(__CUDACC__) && defined(__GNUC__)
#define FASTLSTM_HOST_INLINE inline __attribute__((always_inline))
#else
#define FASTLSTM_HOST_INLINE inline
#endif

// The bits of the floating types the exp polynomials scale by: the shifter
// 1.5 * 2^m (m mantissa bits), which, added to a value below 2^(m-1) in
// magnitude, rounds it to an integer held in the low mantissa bits.
template <typename T>
struct FloatBits;
template <>
struct FloatBits<float> {
  using Bits = uint32_t;
  static constexpr Bits kShifter = 0x4B400000u, kBias = 127u;
  static constexpr int kMantissa = 23;
};
template <>
struct FloatBits<double> {
  using Bits = uint64_t;
  static constexpr Bits kShifter = 0x4338000000000000u, kBias = 1023u;
  static constexpr int kMantissa = 52;
};

// The lane-wise steps of the exp polynomials that are not plain arithmetic,
// for scalars; the CPU engine's SIMD vectors overload them
// (csrc/cpu/engine/vec.h). The clamps keep NaN: both comparisons are false
// for it. Their upper ends lie past the largest x whose exp is finite
// (88.72 for float, 709.78 for double), so that e^x overflows to inf there
// as with libm and sigmoid(x) is exactly 0 where torch's is (1 / (1 + inf));
// the lower ends keep 2^(n-1) a normal number.
constexpr float kExpArgMin = -86.0f, kExpArgMax = 89.0f;
constexpr double kExpArgMinDouble = -707.0, kExpArgMaxDouble = 710.0;
FASTLSTM_HOST_INLINE float clamp_exp_arg(float x) {
  x = x < kExpArgMin ? kExpArgMin : x;
  return x > kExpArgMax ? kExpArgMax : x;
}
FASTLSTM_HOST_INLINE double clamp_exp_arg(double x) {
  x = x < kExpArgMinDouble ? kExpArgMinDouble : x;
  return x > kExpArgMaxDouble ? kExpArgMaxDouble : x;
}
// 2^(n-1) from t = n + shifter, whose low mantissa bits hold the integer n.
// Unsigned, so that the shift is defined for every t (NaN gives garbage
// here, but the polynomial it scales is NaN already).
template <typename T>
FASTLSTM_HOST_INLINE T half_pow2_of_shifted_scalar(T t) {
  using B = FloatBits<T>;
  typename B::Bits t_bits;
  memcpy(&t_bits, &t, sizeof t_bits);
  const typename B::Bits scale_bits = (t_bits - B::kShifter + B::kBias - 1u) << B::kMantissa;
  T scale;
  memcpy(&scale, &scale_bits, sizeof scale);
  return scale;
}
FASTLSTM_HOST_INLINE float half_pow2_of_shifted(float t) {
  return half_pow2_of_shifted_scalar(t);
}
FASTLSTM_HOST_INLINE double half_pow2_of_shifted(double t) {
  return half_pow2_of_shifted_scalar(t);
}
// a * b + c; the CPU engine's vectors overload it with one FMA. Where a * b
// is exact (a doubling, below) both round alike.
FASTLSTM_HOST_INLINE float mul_add(float a, float b, float c) { return a * b + c; }
FASTLSTM_HOST_INLINE double mul_add(double a, double b, double c) { return a * b + c; }
// a < b ? if_less : otherwise, lane by lane.
FASTLSTM_HOST_INLINE double where_less(double a, double b, double if_less, double otherwise) {
  return a < b ? if_less : otherwise;
}

// 1 + e^x for float without branches or table lookups, so that host loops
// over it vectorize (libm's expf is a call per element). Cody-Waite range
// reduction x = n*ln2 + r, |r| <= ln2/2, then a degree-6 polynomial for e^r,
// doubled and scaled by 2^(n-1): n reaches 128 near the top of the range,
// where 2^n is no float but 2^(n-1) is, and the product overflows to inf as
// it should. The doubling is exact and rides in an FMA, so this is as many
// operations as 1 + e^r * 2^n.
// sigmoid and tanh built on it stay within 2^-21 of the exact values on
// every input (tests/test_gate_math.py; measured 8.9e-8 and 1.8e-7).
// F is float or a SIMD vector of floats: the same operations lane by lane.
template <typename F>
FASTLSTM_HOST_INLINE F one_plus_exp_poly(F x) {
  x = clamp_exp_arg(x);
  // Adding 1.5*2^23 rounds to an integer held in the low mantissa bits.
  const F shifter(12582912.0f);
  const F t = x * F(1.44269504088896341f) + shifter;
  const F n = t - shifter;
  F r = x - n * F(0.693359375f);        // ln2, high part (exact product)
  r = r - n * F(-2.12194440e-4f);       // ln2, low part
  F p(1.9875691500e-4f);
  p = p * r + F(1.3981999507e-3f);
  p = p * r + F(8.3334519073e-3f);
  p = p * r + F(4.1665795894e-2f);
  p = p * r + F(1.6666665459e-1f);
  p = p * r + F(5.0000001201e-1f);
  const F twice_exp_r = mul_add(p * r * r + r, F(2.0f), F(2.0f));
  return mul_add(twice_exp_r, half_pow2_of_shifted(t), F(1.0f));
}

// exp(x) for double, the same way: x = n*ln2 + r with ln2 in two parts
// (fdlibm's: n*ln2_hi is exact for |n| < 2^20), then e^r by its Taylor
// series to r^13, whose remainder is below 2^-60 for |r| <= ln2/2, doubled
// and scaled by 2^(n-1) as above (n reaches 1024 at the clamp). Within a few
// ulp of libm's exp (tests/test_gate_math.py). F is double or a SIMD vector
// of doubles.
template <typename F>
FASTLSTM_HOST_INLINE F exp_poly_double(F x) {
  x = clamp_exp_arg(x);
  const F shifter(6755399441055744.0);  // 1.5*2^52
  const F t = x * F(1.4426950408889634) + shifter;
  const F n = t - shifter;
  F r = x - n * F(6.93147180369123816490e-01);
  r = r - n * F(1.90821492927058770002e-10);
  F p(1.0 / 6227020800.0);  // 1/13!
  p = p * r + F(1.0 / 479001600.0);
  p = p * r + F(1.0 / 39916800.0);
  p = p * r + F(1.0 / 3628800.0);
  p = p * r + F(1.0 / 362880.0);
  p = p * r + F(1.0 / 40320.0);
  p = p * r + F(1.0 / 5040.0);
  p = p * r + F(1.0 / 720.0);
  p = p * r + F(1.0 / 120.0);
  p = p * r + F(1.0 / 24.0);
  p = p * r + F(1.0 / 6.0);
  p = p * r + F(0.5);
  const F twice_exp_r = mul_add(p * r * r + r, F(2.0), F(2.0));
  return twice_exp_r * half_pow2_of_shifted(t);
}

// tanh(x) for double with one division: below |x| = 0.625 Cephes' rational
// x + x z P(z) / Q(z) (z = x^2), relative error a few ulp where tanh is
// small; above, (e - 1) / (e + 1) for e = exp(2x), whose sign comes with x.
// |x| is held to 20 first, where tanh is 1 to the last bit already, so that
// e stays finite (inf / inf would be NaN); NaN passes both comparisons.
// F is double or a SIMD vector of doubles (both branches run, one is kept).
template <typename F>
FASTLSTM_HOST_INLINE F tanh_rational_double(F x) {
  const F low(-20.0), high(20.0);
  x = where_less(x, low, low, x);
  x = where_less(high, x, high, x);
  const F z = x * x;
  const F p = (F(-9.64399179425052238628e-1) * z + F(-9.92877231001918586564e1)) * z +
              F(-1.61468768441708447952e3);
  const F q = ((z + F(1.12811678491632931402e2)) * z + F(2.23548839060100448583e3)) * z +
              F(4.84406305325125486048e3);
  const F e = exp_poly_double(F(2.0) * x);
  const F small(0.390625);  // 0.625^2
  return where_less(z, small, x * q + x * z * p, e - F(1.0)) /
         where_less(z, small, q, e + F(1.0));
}

// 1 + e^x, sigmoid's denominator. Overloads instead of templates on std::
// so that nvcc picks its device functions and the host compiler its own,
// from the same call site.
FASTLSTM_HD float one_plus_exp(float x) {
#if defined(__CUDA_ARCH__)
  return 1.0f + expf(x);
#else
  return one_plus_exp_poly(x);
#endif
}
FASTLSTM_HD double one_plus_exp(double x) { return 1.0 + exp(x); }

template <typename T>
FASTLSTM_HD T sigmoid(T x) {
  return T(1) / one_plus_exp(-x);
}

// tanh through exp keeps the host loops vectorizable; the absolute error
// stays within a few float ulp of 1 (the relative error near 0 is larger,
// which the gates, bounded by 1, do not feel). F: float or a float vector.
template <typename F>
FASTLSTM_HOST_INLINE F tanh_from_sigmoid(F x) {
  return F(2.0f) * sigmoid(F(2.0f) * x) - F(1.0f);
}
FASTLSTM_HD float tanh_of(float x) {
#if defined(__CUDA_ARCH__)
  return tanhf(x);
#else
  return tanh_from_sigmoid(x);
#endif
}
FASTLSTM_HD double tanh_of(double x) { return tanh(x); }

template <typename T>
struct Gates {
  T i, f, g, o;  // activated: sigmoid, sigmoid, tanh, sigmoid
};

// One gate's activation from its pre-activation (x W_ih^T + h W_hh^T + b):
// tanh for the cell candidate, sigmoid for the others.
template <typename T>
FASTLSTM_HD T activate_gate(int gate, T pre) {
  return gate == kGateG ? tanh_of(pre) : sigmoid(pre);
}

template <typename T>
FASTLSTM_HD Gates<T> activate_gates(T pre_i, T pre_f, T pre_g, T pre_o) {
  return {activate_gate(kGateI, pre_i), activate_gate(kGateF, pre_f),
          activate_gate(kGateG, pre_g), activate_gate(kGateO, pre_o)};
}

template <typename T>
struct NextState {
  T c;  // new cell state
  T h;  // o * tanh(c): the hidden state before any projection
};

// c_t and h_t from the activated gates and c_{t-1}.
template <typename T>
FASTLSTM_HD NextState<T> next_state(const Gates<T>& a, T c_prev) {
  const T c = a.f * c_prev + a.i * a.g;
  return {c, a.o * tanh_of(c)};
}

template <typename T>
struct CellState {
  T i, f, g, o;  // activated gates, kept for the backward pass
  T c;           // new cell state
  T h;           // o * tanh(c): the hidden state before any projection
};

// Pre-activations and c_{t-1} -> gates, c_t, h_t: the two halves above in
// one (the CPU engine runs them apart, for many rows at a time).
template <typename T>
FASTLSTM_HD CellState<T> cell_forward(T pre_i, T pre_f, T pre_g, T pre_o, T c_prev) {
  const Gates<T> a = activate_gates(pre_i, pre_f, pre_g, pre_o);
  const NextState<T> n = next_state(a, c_prev);
  return {a.i, a.f, a.g, a.o, n.c, n.h};
}

template <typename T>
struct CellGrad {
  T di, df, dg, do_;  // gradients w.r.t. the gate pre-activations
  T dc_prev;          // gradient w.r.t. c_{t-1}
};

// Reverse of cell_forward. dh is dL/dh_t (before projection), dc is the
// gradient reaching c_t from step t+1; gates are the saved activations.
template <typename T>
FASTLSTM_HD CellGrad<T> cell_backward(T i, T f, T g, T o, T c, T c_prev, T dh, T dc) {
  const T tanh_c = tanh_of(c);
  const T dc_total = dc + dh * o * (T(1) - tanh_c * tanh_c);
  CellGrad<T> d;
  d.di = dc_total * g * i * (T(1) - i);
  d.df = dc_total * c_prev * f * (T(1) - f);
  d.dg = dc_total * i * (T(1) - g * g);
  d.do_ = dh * tanh_c * o * (T(1) - o);
  d.dc_prev = dc_total * f;
  return d;
}

// The hidden state recomputed from saved gates and cell: the backward pass of
// a projected LSTM needs it and the workspace stores only gates and cells.
template <typename T>
FASTLSTM_HD T hidden_from(T o, T c) {
  return o * tanh_of(c);
}

}  // namespace fastlstm
