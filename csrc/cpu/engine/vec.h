// SIMD vectors of the CPU engine as GCC vector extensions: Vec<T, W> holds W
// lanes of T. Every engine template is written once over Vec and compiled
// once per instruction set and storage type (engine_avx512.cpp: 16 floats
// or 8 doubles under target("avx512f,..."); engine_avx2.cpp: 8 floats or 4
// doubles under target("avx2,fma"); engine_generic.cpp: 16-byte vectors,
// SSE2 or NEON).
// Each of those files defines FASTLSTM_CPU_ISA, the namespace that keeps its
// symbols apart from the other's, before including this header.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

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
FASTLSTM_RAW_VECTOR(double, 4);
FASTLSTM_RAW_VECTOR(double, 8);
FASTLSTM_RAW_VECTOR(uint32_t, 4);
FASTLSTM_RAW_VECTOR(uint32_t, 8);
FASTLSTM_RAW_VECTOR(uint32_t, 16);
FASTLSTM_RAW_VECTOR(uint64_t, 2);
FASTLSTM_RAW_VECTOR(uint64_t, 4);
FASTLSTM_RAW_VECTOR(uint64_t, 8);
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
  if constexpr (sizeof(T) == 8 && W == 4) return Vec<T, W>(_mm256_fmadd_pd(a.v, b.v, c.v));
#endif
#if defined(FASTLSTM_CPU_AVX512)
  if constexpr (sizeof(T) == 4 && W == 16) return Vec<T, W>(_mm512_fmadd_ps(a.v, b.v, c.v));
  if constexpr (sizeof(T) == 8 && W == 8) return Vec<T, W>(_mm512_fmadd_pd(a.v, b.v, c.v));
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
  if constexpr (sizeof(T) * W == 64) {
    // Each vector's halves added first: then the 32-byte sequence.
    // (In registers: copies of the halves through memory cost the dot
    // products' horizontal sums twice their time.)
    auto fold = [](Vec<T, W> x) {
      if constexpr (W == 16) {
        return Vec<T, 8>(__builtin_shufflevector(x.v, x.v, 0, 1, 2, 3, 4, 5, 6, 7) +
                         __builtin_shufflevector(x.v, x.v, 8, 9, 10, 11, 12, 13, 14, 15));
      } else {
        return Vec<T, 4>(__builtin_shufflevector(x.v, x.v, 0, 1, 2, 3) +
                         __builtin_shufflevector(x.v, x.v, 4, 5, 6, 7));
      }
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
  if constexpr (sizeof(T) == 8 && W == 4) {
    // (a0+a1, b0+b1, a2+a3, b2+b3) and the same of c, d; then their halves.
    const __m256d ab = _mm256_hadd_pd(a.v, b.v), cd = _mm256_hadd_pd(c.v, d.v);
    _mm256_storeu_pd(out, _mm256_add_pd(_mm256_permute2f128_pd(ab, cd, 0x20),
                                        _mm256_permute2f128_pd(ab, cd, 0x31)));
    return;
  }
#endif
  out[0] = sum_lanes(a);
  out[1] = sum_lanes(b);
  out[2] = sum_lanes(c);
  out[3] = sum_lanes(d);
}

// The overloads gate_math.h's equations find for vectors: the same
// operations as its scalar versions, lane by lane. Floats and doubles both
// take its polynomial exp (libm's would be a call per lane).
template <typename T, int W>
FASTLSTM_VEC_INLINE Vec<T, W> clamp_exp_arg(Vec<T, W> x) {
  using Raw = typename Vec<T, W>::Raw;
  // The scalar clamp's bounds: what it makes of -inf and inf.
  constexpr T kInf = std::numeric_limits<T>::infinity();
  const Raw lo = Vec<T, W>(fastlstm::clamp_exp_arg(-kInf)).v;
  const Raw hi = Vec<T, W>(fastlstm::clamp_exp_arg(kInf)).v;
  Raw r = x.v < lo ? lo : x.v;
  r = r > hi ? hi : r;
  return Vec<T, W>(r);
}
template <typename T, int W>
FASTLSTM_VEC_INLINE Vec<T, W> half_pow2_of_shifted(Vec<T, W> t) {
  using B = FloatBits<T>;
  using Bits = typename RawVector<typename B::Bits, W>::type;
  using Raw = typename Vec<T, W>::Raw;
  // Casts between vector types of one size reinterpret the bits.
  const Bits scale = ((Bits)t.v - B::kShifter + (B::kBias - 1u)) << B::kMantissa;
  return Vec<T, W>((Raw)scale);
}
template <typename T, int W>
FASTLSTM_VEC_INLINE Vec<T, W> mul_add(Vec<T, W> a, Vec<T, W> b, Vec<T, W> c) {
  return fma(a, b, c);
}
template <typename T, int W>
FASTLSTM_VEC_INLINE Vec<T, W> where_less(Vec<T, W> a, Vec<T, W> b, Vec<T, W> if_less,
                                         Vec<T, W> otherwise) {
  return Vec<T, W>(a.v < b.v ? if_less.v : otherwise.v);
}
// 1 + e^x and tanh of vectors of floats or of doubles (V: a Vec or a Pair).
template <typename V>
FASTLSTM_VEC_INLINE V one_plus_exp_of_lanes(V x) {
  if constexpr (sizeof(typename V::Scalar) == 4) {
    return one_plus_exp_poly(x);
  } else {
    return V(1.0) + exp_poly_double(x);
  }
}
template <typename V>
FASTLSTM_VEC_INLINE V tanh_of_lanes(V x) {
  if constexpr (sizeof(typename V::Scalar) == 4) {
    return tanh_from_sigmoid(x);
  } else {
    return tanh_rational_double(x);
  }
}
template <typename T, int W>
FASTLSTM_VEC_INLINE Vec<T, W> one_plus_exp(Vec<T, W> x) {
  return one_plus_exp_of_lanes(x);
}
template <typename T, int W>
FASTLSTM_VEC_INLINE Vec<T, W> tanh_of(Vec<T, W> x) {
  return tanh_of_lanes(x);
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
FASTLSTM_VEC_INLINE Pair<V> where_less(Pair<V> a, Pair<V> b, Pair<V> if_less, Pair<V> otherwise) {
  return {where_less(a.lo, b.lo, if_less.lo, otherwise.lo),
          where_less(a.hi, b.hi, if_less.hi, otherwise.hi)};
}
template <typename V>
FASTLSTM_VEC_INLINE Pair<V> one_plus_exp(Pair<V> x) {
  return one_plus_exp_of_lanes(x);
}
template <typename V>
FASTLSTM_VEC_INLINE Pair<V> tanh_of(Pair<V> x) {
  return tanh_of_lanes(x);
}

// The vector the gate math runs on.
template <typename V>
using Wide = Pair<V>;

}  // namespace fastlstm::cpu::FASTLSTM_CPU_ISA
