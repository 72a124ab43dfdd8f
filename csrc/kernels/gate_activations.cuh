// The gate nonlinearities exactly as the step kernels compute them, exposed
// through fastlstm::_gate_activations so the tests can bound their error.
#pragma once

#include "kernel_prelude.cuh"

#include "../gate_math.h"
#include "convert.cuh"

namespace fastlstm {

template <typename T>
__global__ void gate_activations(const T* x,  // [n]
                                 T* sig,      // [n]
                                 T* tanh,     // [n]
                                 int64_t n) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const acc_t<T> v = to_acc(x[i]);
  sig[i] = from_acc<T>(sigmoid(v));
  tanh[i] = from_acc<T>(tanh_of(v));
}

}  // namespace fastlstm
