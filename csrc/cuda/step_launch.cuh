// Definitions behind step_launch.h, instantiated per storage type by the
// thin step_launch_*.cu files.
#pragma once

#include "../kernels/gate_activations.cuh"
#include "../kernels/lstm_step_dispatch.cuh"
#include "step_launch.h"

#include <algorithm>

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

// Cooperative launch with opt-in dynamic shared memory beyond 48 KB.
struct CooperativeLaunch {
  cudaStream_t stream;
  cudaError_t* result;
  template <typename Kernel, typename Params>
  void operator()(dim3 grid, dim3 block, size_t shared, Kernel kernel, const Params& p) const {
    *result = cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel),
                                   cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shared);
    if (*result != cudaSuccess) return;
    void* args[] = {const_cast<Params*>(&p)};
    *result = cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(kernel), grid, block, args,
                                          shared, stream);
  }
};

template <typename T>
cudaError_t run_forward_persistent(const PersistentForwardParams<T>& p, bool save,
                                   cudaStream_t stream) {
  if (p.k_begin >= p.k_end || p.hidden == 0) return cudaSuccess;
  cudaError_t result = cudaSuccess;
  dispatch_persistent_forward(p, save, CooperativeLaunch{stream, &result});
  return result;
}

template <typename T>
cudaError_t run_backward_persistent(const PersistentBackwardParams<T>& p, cudaStream_t stream) {
  if (p.sched.steps == 0 || p.hidden == 0) return cudaSuccess;
  cudaError_t result = cudaSuccess;
  dispatch_persistent_backward(p, CooperativeLaunch{stream, &result});
  return result;
}

// Resident blocks of one kernel instance with this dynamic shared memory.
template <typename Kernel>
int resident_blocks(Kernel kernel, size_t shared, int device) {
  int optin = 0, sms = 0, cooperative = 0, per_sm = 0;
  if (cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) ||
      cudaDeviceGetAttribute(&cooperative, cudaDevAttrCooperativeLaunch, device)) {
    return 0;
  }
  if (!cooperative || shared > (size_t)optin) return 0;
  const void* entry = reinterpret_cast<const void*>(kernel);
  if (cudaFuncSetAttribute(entry, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shared) ||
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, entry, PersistentTile::kThreads,
                                                    shared)) {
    return 0;
  }
  return per_sm * sms;
}

template <typename T>
int persistent_capacity(PersistentKernel kernel, size_t shared_bytes) {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return 0;
  if (kernel == PersistentKernel::kBackward) {
    return resident_blocks(&lstm_backward_persistent<T>, shared_bytes, device);
  }
  if constexpr (kHasTensorCoreKernels<T>) {
    if (kernel == PersistentKernel::kBackwardTensorCore) {
      return resident_blocks(&lstm_backward_persistent_tensor_core<T>, shared_bytes, device);
    }
    if (kernel == PersistentKernel::kForwardTensorCore) {
      return std::min(
          resident_blocks(&lstm_forward_persistent_tensor_core<T, true>, shared_bytes, device),
          resident_blocks(&lstm_forward_persistent_tensor_core<T, false>, shared_bytes, device));
    }
  }
  return std::min(resident_blocks(&lstm_forward_persistent<T, true>, shared_bytes, device),
                  resident_blocks(&lstm_forward_persistent<T, false>, shared_bytes, device));
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
// gate_activations serves the _gate_activations test hook, float and double
// only.
#define FASTLSTM_INSTANTIATE_STEP_LAUNCH(T)                                                      \
  template cudaError_t run_forward_step<T>(const ForwardStepParams<T>&, StepVariant, bool,       \
                                           cudaStream_t);                                         \
  template cudaError_t run_backward_step<T>(const BackwardStepParams<T>&, StepVariant,           \
                                            cudaStream_t);                                        \
  template cudaError_t run_forward_persistent<T>(const PersistentForwardParams<T>&, bool,       \
                                                 cudaStream_t);                                   \
  template cudaError_t run_backward_persistent<T>(const PersistentBackwardParams<T>&,            \
                                                  cudaStream_t);                                  \
  template int persistent_capacity<T>(PersistentKernel, size_t)
