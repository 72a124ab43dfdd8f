// Definitions behind step_launch.h, instantiated per storage type by the
// thin step_launch_*.cu files.
#pragma once

#include "../kernels/kernel_dispatch.h"
#include "../kernels/kernel_entries.cuh"
#include "step_launch.h"

#include <algorithm>

namespace fastlstm::gpu {

// Launches an instance on `stream`; cooperatively (every block resident,
// the grid exactly as planned) where the config asks, with opt-in dynamic
// shared memory beyond 48 KB.
struct StreamLaunch {
  cudaStream_t stream;
  cudaError_t* result;
  template <typename Tag, typename... Args>
  void operator()(const LaunchConfig& c, Tag tag, const Args&... args) const {
    const auto kernel = kernel_entry(tag);
    const dim3 grid(c.grid_x, c.grid_y), block(c.threads);
    if (c.shared_bytes > 48 * 1024) {
      *result = cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel),
                                     cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     (int)c.shared_bytes);
      if (*result != cudaSuccess) return;
    }
    if (!c.cooperative) {
      kernel<<<grid, block, c.shared_bytes, stream>>>(args...);
      *result = cudaGetLastError();
      return;
    }
    void* argv[] = {const_cast<void*>(static_cast<const void*>(&args))...};
    *result = cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(kernel), grid, block, argv,
                                          c.shared_bytes, stream);
  }
};

template <typename T>
cudaError_t run_forward_step(const ForwardStepParams<T>& p, StepVariant variant, bool save,
                             cudaStream_t stream) {
  cudaError_t result = cudaSuccess;
  dispatch_forward_step(p, variant, save, StreamLaunch{stream, &result});
  return result;
}

template <typename T>
cudaError_t run_backward_step(const BackwardStepParams<T>& p, StepVariant variant,
                              cudaStream_t stream) {
  cudaError_t result = cudaSuccess;
  dispatch_backward_step(p, variant, StreamLaunch{stream, &result});
  return result;
}

template <typename T>
cudaError_t run_forward_persistent(const PersistentForwardParams<T>& p, bool save,
                                   cudaStream_t stream) {
  cudaError_t result = cudaSuccess;
  dispatch_persistent_forward(p, save, StreamLaunch{stream, &result});
  return result;
}

template <typename T>
cudaError_t run_backward_persistent(const PersistentBackwardParams<T>& p, cudaStream_t stream) {
  cudaError_t result = cudaSuccess;
  dispatch_persistent_backward(p, StreamLaunch{stream, &result});
  return result;
}

template <typename T>
cudaError_t run_gate_activations(const T* x, T* sig, T* tanh, int64_t n, cudaStream_t stream) {
  cudaError_t result = cudaSuccess;
  dispatch_gate_activations(x, sig, tanh, n, StreamLaunch{stream, &result});
  return result;
}

// Resident blocks of one kernel instance with this dynamic shared memory.
template <typename Tag>
int resident_blocks(Tag tag, size_t shared, int device) {
  int optin = 0, sms = 0, cooperative = 0, per_sm = 0;
  if (cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) ||
      cudaDeviceGetAttribute(&cooperative, cudaDevAttrCooperativeLaunch, device)) {
    return 0;
  }
  if (!cooperative || shared > (size_t)optin) return 0;
  const void* entry = reinterpret_cast<const void*>(kernel_entry(tag));
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
    return resident_blocks(BackwardPersistentKernel<T>{}, shared_bytes, device);
  }
  if (kernel == PersistentKernel::kBackward2d) {
    return std::min(resident_blocks(BackwardPersistent2dKernel<T, 1>{}, shared_bytes, device),
                    resident_blocks(BackwardPersistent2dKernel<T, 4>{}, shared_bytes, device));
  }
  if (kernel == PersistentKernel::kForward2d) {
    return std::min(
        std::min(resident_blocks(ForwardPersistent2dKernel<T, 1, true>{}, shared_bytes, device),
                 resident_blocks(ForwardPersistent2dKernel<T, 1, false>{}, shared_bytes, device)),
        std::min(resident_blocks(ForwardPersistent2dKernel<T, 4, true>{}, shared_bytes, device),
                 resident_blocks(ForwardPersistent2dKernel<T, 4, false>{}, shared_bytes, device)));
  }
  if constexpr (kHasTensorCoreKernels<T> || std::is_same<T, float>::value) {
    const auto blocks = [&](auto tag) { return resident_blocks(tag, shared_bytes, device); };
    if (kernel == PersistentKernel::kBackward2dTensorCore) {
      return tensor_core_capacity<T>(blocks, true);
    }
    if (kernel == PersistentKernel::kForward2dTensorCore) {
      return tensor_core_capacity<T>(blocks, false);
    }
  }
  return std::min(resident_blocks(ForwardPersistentKernel<T, true>{}, shared_bytes, device),
                  resident_blocks(ForwardPersistentKernel<T, false>{}, shared_bytes, device));
}

}  // namespace fastlstm::gpu

// The explicit instances a per-dtype .cu file provides (inside fastlstm::gpu).
#define FASTLSTM_INSTANTIATE_STEP_LAUNCH(T)                                                      \
  template cudaError_t run_forward_step<T>(const ForwardStepParams<T>&, StepVariant, bool,       \
                                           cudaStream_t);                                         \
  template cudaError_t run_backward_step<T>(const BackwardStepParams<T>&, StepVariant,           \
                                            cudaStream_t);                                        \
  template cudaError_t run_forward_persistent<T>(const PersistentForwardParams<T>&, bool,       \
                                                 cudaStream_t);                                   \
  template cudaError_t run_backward_persistent<T>(const PersistentBackwardParams<T>&,            \
                                                  cudaStream_t);                                  \
  template cudaError_t run_gate_activations<T>(const T*, T*, T*, int64_t, cudaStream_t);         \
  template int persistent_capacity<T>(PersistentKernel, size_t)
