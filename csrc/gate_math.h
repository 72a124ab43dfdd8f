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

// The bits of the floating types exp_poly and exp_poly_double scale by:
// the shifter 1.5 * 2^m (m mantissa bits), which, added to a value below
// 2^(m-1) in magnitude, rounds it to an integer held in the low mantissa bits.
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

// The lane-wise steps of the exp polynomials that are not arithmetic, for
// scalars; the CPU engine's SIMD vectors overload them (csrc/cpu/engine/vec.h).
// The clamp keeps e^x finite and normal, and keeps NaN: both comparisons are
// false for it.
FASTLSTM_HOST_INLINE float clamp_exp_arg(float x) {
  x = x < -87.0f ? -87.0f : x;
  return x > 88.0f ? 88.0f : x;
}
FASTLSTM_HOST_INLINE double clamp_exp_arg(double x) {
  x = x < -708.0 ? -708.0 : x;
  return x > 709.0 ? 709.0 : x;
}
// 2^n from t = n + shifter, whose low mantissa bits hold the integer n.
// Unsigned, so that the shift is defined for every t (NaN gives garbage
// here, but the polynomial it scales is NaN already).
template <typename T>
FASTLSTM_HOST_INLINE T pow2_of_shifted_scalar(T t) {
  using B = FloatBits<T>;
  typename B::Bits t_bits;
  memcpy(&t_bits, &t, sizeof t_bits);
  const typename B::Bits scale_bits = (t_bits - B::kShifter + B::kBias) << B::kMantissa;
  T scale;
  memcpy(&scale, &scale_bits, sizeof scale);
  return scale;
}
FASTLSTM_HOST_INLINE float pow2_of_shifted(float t) { return pow2_of_shifted_scalar(t); }
FASTLSTM_HOST_INLINE double pow2_of_shifted(double t) { return pow2_of_shifted_scalar(t); }
// a < b ? if_less : otherwise, lane by lane.
FASTLSTM_HOST_INLINE double where_less(double a, double b, double if_less, double otherwise) {
  return a < b ? if_less : otherwise;
}

// exp(x) for float without branches or table lookups, so that host loops
// over it vectorize (libm's expf is a call per element). Cody-Waite range
// reduction x = n*ln2 + r, |r| <= ln2/2, then a degree-6 polynomial for e^r.
// sigmoid and tanh built on it stay within 2^-21 of the exact values on
// every input (tests/test_gate_math.py; measured 8.9e-8 and 1.8e-7).
// F is float or a SIMD vector of floats: the same operations lane by lane.
template <typename F>
FASTLSTM_HOST_INLINE F exp_poly(F x) {
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
  p = p * r * r + r + F(1.0f);
  return p * pow2_of_shifted(t);
}

// exp(x) for double, the same way: x = n*ln2 + r with ln2 in two parts
// (fdlibm's: n*ln2_hi is exact for |n| < 2^20), then e^r by its Taylor
// series to r^13, whose remainder is below 2^-60 for |r| <= ln2/2. Within
// a few ulp of libm's exp (tests/test_gate_math.py). F is double or a SIMD
// vector of doubles.
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
  p = p * r * r + r + F(1.0);
  return p * pow2_of_shifted(t);
}

// tanh(x) for double with one division: below |x| = 0.625 Cephes' rational
// x + x z P(z) / Q(z) (z = x^2), relative error a few ulp where tanh is
// small; above, (e - 1) / (e + 1) for e = exp(2x), whose sign comes with x.
// F is double or a SIMD vector of doubles (both branches run, one is kept).
template <typename F>
FASTLSTM_HOST_INLINE F tanh_rational_double(F x) {
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

// Overloads instead of templates on std:: so that nvcc picks its device
// functions and the host compiler its own, from the same call site.
FASTLSTM_HD float exp_of(float x) {
#if defined(__CUDA_ARCH__)
  return expf(x);
#else
  return exp_poly(x);
#endif
}
FASTLSTM_HD double exp_of(double x) { return exp(x); }

template <typename T>
FASTLSTM_HD T sigmoid(T x) {
  return T(1) / (T(1) + exp_of(-x));
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
