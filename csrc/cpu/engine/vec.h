// SIMD vectors of the CPU engine as GCC vector extensions: Vec<T, W> holds W
// lanes of T. Every engine template is written once over Vec and compiled
// once per instruction set (engine_avx512.cpp: 16 floats under
// target("avx512f,..."); engine_avx2.cpp: 8 floats under target("avx2,fma");
// engine_generic.cpp: 16-byte vectors, SSE2 or NEON).
// Each of those files defines FASTLSTM_CPU_ISA, the namespace that keeps its
// symbols apart from the other's, before including this header.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "../../gate_math.h"

#if !defined(FASTLSTM_CPU_ISA)
#error "define FASTLSTM_CPU_ISA (the instruction set's namespace) before including vec.h"
#endif

#define FASTLSTM_VEC_INLINE inline __attribute__((always_inline))

namespace fastlstm::cpu::FASTLSTM_CPU_ISA {

// The raw vector types (vector_size cannot take a template's type).
template <typename T, int W>
struct RawVector;
#define FASTLSTM_RAW_VECTOR(T, W) \
  template <>                      \
  struct RawVector<T, W> {         \
    typedef T type __attribute__((vector_size(sizeof(T) * W))); \
  }
FASTLSTM_RAW_VECTOR(float, 4);
FASTLSTM_RAW_VECTOR(float, 8);
FASTLSTM_RAW_VECTOR(float, 16);
FASTLSTM_RAW_VECTOR(double, 2);
FASTLSTM_RAW_VECTOR(uint32_t, 4);
FASTLSTM_RAW_VECTOR(uint32_t, 8);
FASTLSTM_RAW_VECTOR(uint32_t, 16);
#undef FASTLSTM_RAW_VECTOR

template <typename T, int W>
struct Vec {
  using Scalar = T;
  using Raw = typename RawVector<T, W>::type;
  static constexpr int kWidth = W;
  Raw v;

  Vec() = default;
  // Every lane s (lane by lane: adding s to zeros would turn -0 into +0).
  FASTLSTM_VEC_INLINE Vec(T s) {
    for (int i = 0; i < W; ++i) v[i] = s;
  }
  FASTLSTM_VEC_INLINE explicit Vec(Raw r) : v(r) {}

  static FASTLSTM_VEC_INLINE Vec load(const T* p) {
    Raw r;
    std::memcpy(&r, p, sizeof r);
    return Vec(r);
  }
  // Lanes [0, n) from p, the rest zero: the tail of a row that is not a
  // whole number of vectors.
  static FASTLSTM_VEC_INLINE Vec load_first(const T* p, int n) {
    Raw r{};
    std::memcpy(&r, p, sizeof(T) * n);
    return Vec(r);
  }
  FASTLSTM_VEC_INLINE void store(T* p) const { std::memcpy(p, &v, sizeof v); }
  FASTLSTM_VEC_INLINE void store_first(T* p, int n) const { std::memcpy(p, &v, sizeof(T) * n); }
  FASTLSTM_VEC_INLINE T lane(int i) const { return v[i]; }
};

template <typename T, int W>
FASTLSTM_VEC_INLINE Vec<T, W> operator+(Vec<T, W> a, Vec<T, W> b) {
  return Vec<T, W>(a.v + b.v);
}
template <typename T, int W>
FASTLSTM_VEC_INLINE Vec<T, W> operator-(Vec<T, W> a, Vec<T, W> b) {
  return Vec<T, W>(a.v - b.v);
}
template <typename T, int W>
FASTLSTM_VEC_INLINE Vec<T, W> operator*(Vec<T, W> a, Vec<T, W> b) {
  return Vec<T, W>(a.v * b.v);
}
template <typename T, int W>
FASTLSTM_VEC_INLINE Vec<T, W> operator/(Vec<T, W> a, Vec<T, W> b) {
  return Vec<T, W>(a.v / b.v);
}
template <typename T, int W>
FASTLSTM_VEC_INLINE Vec<T, W> operator-(Vec<T, W> a) {
  return Vec<T, W>(-a.v);
}

// Loads and stores of the first n lanes: a row's last vector of units.
template <typename V>
struct Lanes {
  using T = typename V::Scalar;
  int n;
  FASTLSTM_VEC_INLINE V load(const T* p) const {
    return n == V::kWidth ? V::load(p) : V::load_first(p, n);
  }
  FASTLSTM_VEC_INLINE void store(V x, T* p) const {
    n == V::kWidth ? x.store(p) : x.store_first(p, n);
  }
};

// a * b + c, rounded once where the instruction set has FMA (the GEMM
// micro-kernels; the gate math keeps separate products and sums).
template <typename T, int W>
FASTLSTM_VEC_INLINE Vec<T, W> fma(Vec<T, W> a, Vec<T, W> b, Vec<T, W> c) {
#if defined(FASTLSTM_CPU_AVX2)
  if constexpr (sizeof(T) == 4 && W == 8) return Vec<T, W>(_mm256_fmadd_ps(a.v, b.v, c.v));
#endif
#if defined(FASTLSTM_CPU_AVX512)
  if constexpr (sizeof(T) == 4 && W == 16) return Vec<T, W>(_mm512_fmadd_ps(a.v, b.v, c.v));
#endif
  return Vec<T, W>(a.v * b.v + c.v);
}

// Sum of the lanes in a fixed order (pairwise halves), whatever W.
template <typename T, int W>
FASTLSTM_VEC_INLINE T sum_lanes(Vec<T, W> a) {
  T lanes[W];
  a.store(lanes);
  for (int width = W / 2; width > 0; width /= 2) {
    for (int i = 0; i < width; ++i) lanes[i] += lanes[i + width];
  }
  return lanes[0];
}

// The lane sums of four vectors, out[i] = sum of lanes of the i-th, each in
// a fixed order (one instruction sequence per instruction set).
template <typename T, int W>
FASTLSTM_VEC_INLINE void sum_lanes4(Vec<T, W> a, Vec<T, W> b, Vec<T, W> c, Vec<T, W> d, T* out) {
#if defined(FASTLSTM_CPU_AVX512)
  if constexpr (sizeof(T) == 4 && W == 16) {
    // Each vector's halves added first: then the 8-lane sequence.
    auto fold = [](Vec<T, W> x) {
      return Vec<T, 8>(__builtin_shufflevector(x.v, x.v, 0, 1, 2, 3, 4, 5, 6, 7) +
                       __builtin_shufflevector(x.v, x.v, 8, 9, 10, 11, 12, 13, 14, 15));
    };
    sum_lanes4(fold(a), fold(b), fold(c), fold(d), out);
    return;
  }
#endif
#if defined(FASTLSTM_CPU_AVX2)
  if constexpr (sizeof(T) == 4 && W == 8) {
    const __m256 ab = _mm256_hadd_ps(a.v, b.v), cd = _mm256_hadd_ps(c.v, d.v);
    const __m256 abcd = _mm256_hadd_ps(ab, cd);
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1)));
    return;
  }
#endif
  out[0] = sum_lanes(a);
  out[1] = sum_lanes(b);
  out[2] = sum_lanes(c);
  out[3] = sum_lanes(d);
}

// The overloads gate_math.h's equations find for vectors of float: the same
// operations as its float versions, lane by lane.
template <int W>
FASTLSTM_VEC_INLINE Vec<float, W> clamp_exp_arg(Vec<float, W> x) {
  using Raw = typename Vec<float, W>::Raw;
  const Raw lo = Vec<float, W>(kExpArgMin).v, hi = Vec<float, W>(kExpArgMax).v;
  Raw r = x.v < lo ? lo : x.v;
  r = r > hi ? hi : r;
  return Vec<float, W>(r);
}
template <int W>
FASTLSTM_VEC_INLINE Vec<float, W> half_pow2_of_shifted(Vec<float, W> t) {
  using Bits = typename RawVector<uint32_t, W>::type;
  using Raw = typename Vec<float, W>::Raw;
  // Casts between vector types of one size reinterpret the bits.
  const Bits scale = ((Bits)t.v - 0x4B400000u + 126u) << 23;
  return Vec<float, W>((Raw)scale);
}
template <typename T, int W>
FASTLSTM_VEC_INLINE Vec<T, W> mul_add(Vec<T, W> a, Vec<T, W> b, Vec<T, W> c) {
  return fma(a, b, c);
}
template <int W>
FASTLSTM_VEC_INLINE Vec<float, W> one_plus_exp(Vec<float, W> x) {
  return one_plus_exp_poly(x);
}
template <int W>
FASTLSTM_VEC_INLINE Vec<float, W> tanh_of(Vec<float, W> x) {
  return tanh_from_sigmoid(x);
}
// Doubles take libm lane by lane, as the float64 host path does.
template <int W>
FASTLSTM_VEC_INLINE Vec<double, W> one_plus_exp(Vec<double, W> x) {
  for (int i = 0; i < W; ++i) x.v[i] = 1.0 + std::exp(x.v[i]);
  return x;
}
template <int W>
FASTLSTM_VEC_INLINE Vec<double, W> tanh_of(Vec<double, W> x) {
  for (int i = 0; i < W; ++i) x.v[i] = std::tanh(x.v[i]);
  return x;
}

// Two vectors as one, for the gate math: each operation on both halves in
// turn, so that its long dependency chains run two at a time, and a block
// of units spans a whole cache line.
template <typename V>
struct Pair {
  using Scalar = typename V::Scalar;
  static constexpr int kWidth = 2 * V::kWidth;
  V lo, hi;

  Pair() = default;
  FASTLSTM_VEC_INLINE Pair(Scalar s) : lo(s), hi(s) {}
  FASTLSTM_VEC_INLINE Pair(V a, V b) : lo(a), hi(b) {}
  static FASTLSTM_VEC_INLINE Pair load(const Scalar* p) {
    return {V::load(p), V::load(p + V::kWidth)};
  }
  static FASTLSTM_VEC_INLINE Pair load_first(const Scalar* p, int n) {
    if (n <= V::kWidth) return {V::load_first(p, n), V(Scalar(0))};
    return {V::load(p), V::load_first(p + V::kWidth, n - V::kWidth)};
  }
  FASTLSTM_VEC_INLINE void store(Scalar* p) const {
    lo.store(p);
    hi.store(p + V::kWidth);
  }
  FASTLSTM_VEC_INLINE void store_first(Scalar* p, int n) const {
    if (n <= V::kWidth) {
      lo.store_first(p, n);
      return;
    }
    lo.store(p);
    hi.store_first(p + V::kWidth, n - V::kWidth);
  }
};

#define FASTLSTM_PAIR_BINARY(op)                                                     \
  template <typename V>                                                              \
  FASTLSTM_VEC_INLINE Pair<V> operator op(Pair<V> a, Pair<V> b) {                    \
    return {a.lo op b.lo, a.hi op b.hi};                                             \
  }
FASTLSTM_PAIR_BINARY(+)
FASTLSTM_PAIR_BINARY(-)
FASTLSTM_PAIR_BINARY(*)
FASTLSTM_PAIR_BINARY(/)
#undef FASTLSTM_PAIR_BINARY
template <typename V>
FASTLSTM_VEC_INLINE Pair<V> operator-(Pair<V> a) {
  return {-a.lo, -a.hi};
}
template <typename V>
FASTLSTM_VEC_INLINE Pair<V> clamp_exp_arg(Pair<V> x) {
  return {clamp_exp_arg(x.lo), clamp_exp_arg(x.hi)};
}
template <typename V>
FASTLSTM_VEC_INLINE Pair<V> half_pow2_of_shifted(Pair<V> t) {
  return {half_pow2_of_shifted(t.lo), half_pow2_of_shifted(t.hi)};
}
template <typename V>
FASTLSTM_VEC_INLINE Pair<V> mul_add(Pair<V> a, Pair<V> b, Pair<V> c) {
  return {fma(a.lo, b.lo, c.lo), fma(a.hi, b.hi, c.hi)};
}
template <typename V>
FASTLSTM_VEC_INLINE Pair<V> one_plus_exp(Pair<V> x) {
  if constexpr (sizeof(typename V::Scalar) == 4) {
    return one_plus_exp_poly(x);
  } else {
    return {one_plus_exp(x.lo), one_plus_exp(x.hi)};
  }
}
template <typename V>
FASTLSTM_VEC_INLINE Pair<V> tanh_of(Pair<V> x) {
  if constexpr (sizeof(typename V::Scalar) == 4) {
    return tanh_from_sigmoid(x);
  } else {
    return {tanh_of(x.lo), tanh_of(x.hi)};
  }
}

// The vector the gate math runs on.
template <typename V>
using Wide = Pair<V>;

}  // namespace fastlstm::cpu::FASTLSTM_CPU_ISA
