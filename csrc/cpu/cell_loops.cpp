// Bodies of the fused elementwise passes. They live apart from the step
// logic so that each can be compiled for several instruction sets (the
// loader picks AVX-512, AVX2+FMA or baseline SSE2 on the running CPU) and
// vectorized: every pointer is restrict and the loops carry no dependence.
#include "cell_loops.h"

#include "../gate_math.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define FASTLSTM_MULTIVERSION \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FASTLSTM_MULTIVERSION
#endif
#define FASTLSTM_ALWAYS_INLINE inline __attribute__((always_inline))

namespace fastlstm::cpu {
namespace {

template <typename T>
FASTLSTM_ALWAYS_INLINE void forward_body(int64_t H, int64_t j0, int64_t j1, T* __restrict__ gates,
                                         const T* __restrict__ bias, T* __restrict__ c_state,
                                         T* __restrict__ cells, T* __restrict__ h) {
#pragma omp simd
  for (int64_t j = j0; j < j1; ++j) {
    const CellState<T> s = cell_forward(gates[kGateI * H + j] + bias[kGateI * H + j],
                                        gates[kGateF * H + j] + bias[kGateF * H + j],
                                        gates[kGateG * H + j] + bias[kGateG * H + j],
                                        gates[kGateO * H + j] + bias[kGateO * H + j], c_state[j]);
    gates[kGateI * H + j] = s.i;
    gates[kGateF * H + j] = s.f;
    gates[kGateG * H + j] = s.g;
    gates[kGateO * H + j] = s.o;
    c_state[j] = s.c;
    cells[j] = s.c;
    h[j] = s.h;
  }
}

template <typename T>
FASTLSTM_ALWAYS_INLINE void backward_body(int64_t H, int64_t j0, int64_t j1,
                                          const T* __restrict__ gates, const T* __restrict__ c,
                                          const T* __restrict__ c_prev, const T* __restrict__ dh,
                                          const T* __restrict__ dh_recurrent, T* __restrict__ dc,
                                          T* __restrict__ dgates) {
#pragma omp simd
  for (int64_t j = j0; j < j1; ++j) {
    const CellGrad<T> d =
        cell_backward(gates[kGateI * H + j], gates[kGateF * H + j], gates[kGateG * H + j],
                      gates[kGateO * H + j], c[j], c_prev[j], dh[j] + dh_recurrent[j], dc[j]);
    dgates[kGateI * H + j] = d.di;
    dgates[kGateF * H + j] = d.df;
    dgates[kGateG * H + j] = d.dg;
    dgates[kGateO * H + j] = d.do_;
    dc[j] = d.dc_prev;
  }
}

template <typename T>
FASTLSTM_ALWAYS_INLINE void hidden_body(int64_t H, int64_t j0, int64_t j1,
                                        const T* __restrict__ gates, const T* __restrict__ c,
                                        T* __restrict__ h) {
#pragma omp simd
  for (int64_t j = j0; j < j1; ++j) h[j] = hidden_from(gates[kGateO * H + j], c[j]);
}

template <typename T>
FASTLSTM_ALWAYS_INLINE void activation_body(int64_t n, const T* __restrict__ x,
                                            T* __restrict__ sigmoid_x, T* __restrict__ tanh_x) {
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) {
    sigmoid_x[k] = sigmoid(x[k]);
    tanh_x[k] = tanh_of(x[k]);
  }
}

}  // namespace

// Explicit per-type definitions: target_clones applies to plain functions only.
#define FASTLSTM_DEFINE_UNITS(T, ATTR)                                                           \
  template <>                                                                                    \
  ATTR void forward_units<T>(int64_t H, int64_t j0, int64_t j1, T* gates, const T* bias,         \
                             T* c_state, T* cells, T* h) {                                       \
    forward_body(H, j0, j1, gates, bias, c_state, cells, h);                                     \
  }                                                                                              \
  template <>                                                                                    \
  ATTR void backward_units<T>(int64_t H, int64_t j0, int64_t j1, const T* gates, const T* c,     \
                              const T* c_prev, const T* dh, const T* dh_recurrent, T* dc,        \
                              T* dgates) {                                                       \
    backward_body(H, j0, j1, gates, c, c_prev, dh, dh_recurrent, dc, dgates);                    \
  }                                                                                              \
  template <>                                                                                    \
  ATTR void hidden_units<T>(int64_t H, int64_t j0, int64_t j1, const T* gates, const T* c, T* h) { \
    hidden_body(H, j0, j1, gates, c, h);                                                         \
  }                                                                                              \
  template <>                                                                                    \
  ATTR void activation_units<T>(int64_t n, const T* x, T* sigmoid_x, T* tanh_x) {                \
    activation_body(n, x, sigmoid_x, tanh_x);                                                    \
  }

FASTLSTM_DEFINE_UNITS(float, FASTLSTM_MULTIVERSION)
FASTLSTM_DEFINE_UNITS(double, )

}  // namespace fastlstm::cpu
