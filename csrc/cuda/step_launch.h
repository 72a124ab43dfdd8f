// The CUDA library's entry points for the torch glue: launches of the step
// kernels on a stream. Torch-free; returns the launch's cudaError_t.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "../kernels/step_kernels.h"

namespace fastlstm::gpu {

template <typename T>
cudaError_t run_forward_step(const ForwardStepParams<T>& p, StepVariant variant, bool save,
                             cudaStream_t stream);

template <typename T>
cudaError_t run_backward_step(const BackwardStepParams<T>& p, StepVariant variant,
                              cudaStream_t stream);

template <typename T>
cudaError_t run_forward_persistent(const PersistentForwardParams<T>& p, bool save,
                                   cudaStream_t stream);

template <typename T>
cudaError_t run_backward_persistent(const PersistentBackwardParams<T>& p, cudaStream_t stream);

// Largest cooperative grid of the persistent kernel with this much dynamic
// shared memory per block on the current device (0: it cannot launch).
template <typename T>
int persistent_capacity(PersistentKernel kernel, size_t shared_bytes);

// x: [n] -> sigmoid(x), tanh(x) as the kernels compute them (a test hook).
template <typename T>
cudaError_t run_gate_activations(const T* x, T* sig, T* tanh, int64_t n, cudaStream_t stream);

}  // namespace fastlstm::gpu
