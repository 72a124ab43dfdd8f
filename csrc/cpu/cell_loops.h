// The fused elementwise passes of the CPU backend: one read and one write of
// each gate per step, with the math from gate_math.h.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

namespace fastlstm::cpu {

// Splits rows x hidden units into blocks for the thread pool. Units are
// independent, so the split never changes a result (deterministic at any
// thread count); small steps run inline.
template <typename F>
void for_each_unit_block(int64_t rows, int64_t hidden, const F& fn) {
  constexpr int64_t kGrain = 2048;
  at::parallel_for(0, rows * hidden, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end;) {
      const int64_t row = k / hidden;
      const int64_t j0 = k % hidden;
      const int64_t j1 = std::min(hidden, j0 + (end - k));
      fn(row, j0, j1);
      k += j1 - j0;
    }
  });
}

// Units [j0, j1) of one row of one step, forward: pre-activations (without
// bias) in gates are replaced by activations, c is advanced in place and
// o * tanh(c) written to h.
// gates: [4H]  bias: [4H]  c_state, cells: [H]  h: [H]
template <typename T>
void forward_units(int64_t hidden, int64_t j0, int64_t j1, T* gates, const T* bias, T* c_state,
                   T* cells, T* h);

// Units [j0, j1) of one row of one step, backward: dgates from the saved
// activations; dc is replaced by dL/dc_{t-1}. dL/dh is dh + dh_recurrent.
// gates, dgates: [4H]  c, c_prev, dh, dh_recurrent, dc: [H]
template <typename T>
void backward_units(int64_t hidden, int64_t j0, int64_t j1, const T* gates, const T* c,
                    const T* c_prev, const T* dh, const T* dh_recurrent, T* dc, T* dgates);

// o * tanh(c) of units [j0, j1) of one row, from saved gates [4H] and c [H].
template <typename T>
void hidden_units(int64_t hidden, int64_t j0, int64_t j1, const T* gates, const T* c, T* h);

// sigmoid and tanh of n values, exactly as the passes above compute them
// (exposed to the tests through fastlstm::_gate_activations).
template <typename T>
void activation_units(int64_t n, const T* x, T* sigmoid_x, T* tanh_x);

}  // namespace fastlstm::cpu
