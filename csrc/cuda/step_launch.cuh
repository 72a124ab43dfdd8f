// Definitions behind step_launch.h, instantiated per storage type by the
// thin step_launch_*.cu files.
#pragma once

#include "../kernels/gate_activations.cuh"
#include "../kernels/lstm_step_dispatch.cuh"
#include "step_launch.h"

namespace fastlstm::gpu {

// Launches on `stream` with no dynamic shared memory (the tiles are static).
struct StreamLaunch {
  cudaStream_t stream;
  template <typename Kernel, typename Params>
  void operator()(dim3 grid, dim3 block, Kernel kernel, const Params& p) const {
    kernel<<<grid, block, 0, stream>>>(p);
  }
};

template <typename T>
cudaError_t run_forward_step(const ForwardStepParams<T>& p, StepVariant variant, bool save,
                             cudaStream_t stream) {
  if (p.rows == 0 || p.hidden == 0) return cudaSuccess;
  dispatch_forward_step(p, variant, save, StreamLaunch{stream});
  return cudaGetLastError();
}

template <typename T>
cudaError_t run_backward_step(const BackwardStepParams<T>& p, StepVariant variant,
                              cudaStream_t stream) {
  if (p.rows == 0 || p.proj == 0) return cudaSuccess;
  dispatch_backward_step(p, variant, StreamLaunch{stream});
  return cudaGetLastError();
}

template <typename T>
cudaError_t run_gate_activations(const T* x, T* sig, T* tanh, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  constexpr int kThreads = 256;
  gate_activations<T><<<(unsigned)((n + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
      x, sig, tanh, n);
  return cudaGetLastError();
}

}  // namespace fastlstm::gpu

// The explicit instances a per-dtype .cu file provides (inside fastlstm::gpu).
#define FASTLSTM_INSTANTIATE_STEP_LAUNCH(T)                                                      \
  template cudaError_t run_forward_step<T>(const ForwardStepParams<T>&, StepVariant, bool,       \
                                           cudaStream_t);                                         \
  template cudaError_t run_backward_step<T>(const BackwardStepParams<T>&, StepVariant,           \
                                            cudaStream_t);                                        \
  template cudaError_t run_gate_activations<T>(const T*, T*, T*, int64_t, cudaStream_t)
