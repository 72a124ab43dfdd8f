// What the torch glue needs from a kernel library: launches of the step and
// persistent kernels for each storage type, on the library's own stream or
// emulator, and what the device can hold. Torch-free; implemented by
// csrc/cuda (nvcc), csrc/nvrtc (compiled at run time) and csrc/emulated (the
// CPU SIMT emulator).
//
// The virtual entry points take the storage type as a tag and the
// parameters type-erased, so that an implementation handles all four
// storage types with one generic lambda (visit_storage) per entry point.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "step_params.h"

namespace fastlstm {

enum class StorageType { kFloat, kDouble, kHalf, kBFloat16 };

enum class PersistentKernel {
  kForward,
  kForward2d,  // lstm_persistent2d.cuh, either rows-per-thread instance
  kForward2dTensorCore,
  kBackward,
  kBackward2d,  // lstm_persistent2d.cuh, either rows-per-thread instance
  kBackward2dTensorCore,
};

template <typename T>
constexpr StorageType storage_type_of();
template <>
constexpr StorageType storage_type_of<float>() { return StorageType::kFloat; }
template <>
constexpr StorageType storage_type_of<double>() { return StorageType::kDouble; }
template <>
constexpr StorageType storage_type_of<half_t>() { return StorageType::kHalf; }
template <>
constexpr StorageType storage_type_of<bfloat16_t>() { return StorageType::kBFloat16; }

// Calls f(T{}) with the storage type named by `type`.
template <typename F>
decltype(auto) visit_storage(StorageType type, F&& f) {
  switch (type) {
    case StorageType::kDouble: return f(double{});
    case StorageType::kHalf: return f(half_t{});
    case StorageType::kBFloat16: return f(bfloat16_t{});
    default: return f(float{});
  }
}

class StepKernels {
 public:
  virtual ~StepKernels() = default;

  // Streaming multiprocessors the blocks of one step can spread over.
  virtual int multiprocessors() const = 0;
  // Blocks of a persistent kernel with `shared_bytes` of dynamic shared
  // memory each that can be resident at once: the largest cooperative grid;
  // 0 when it cannot launch at all.
  virtual int persistent_capacity(StorageType type, PersistentKernel kernel,
                                  size_t shared_bytes) const = 0;

  template <typename T>
  void forward(const ForwardStepParams<T>& p, StepVariant v, bool save) const {
    if (p.rows > 0 && p.hidden > 0) launch_forward_step(storage_type_of<T>(), &p, v, save);
  }
  template <typename T>
  void backward(const BackwardStepParams<T>& p, StepVariant v) const {
    if (p.rows > 0 && p.proj > 0) launch_backward_step(storage_type_of<T>(), &p, v);
  }
  // Persistent kernels: one cooperative launch for many steps.
  template <typename T>
  void forward_persistent(const PersistentForwardParams<T>& p, bool save) const {
    if (p.k_begin < p.k_end && p.hidden > 0) {
      launch_forward_persistent(storage_type_of<T>(), &p, save);
    }
  }
  template <typename T>
  void backward_persistent(const PersistentBackwardParams<T>& p) const {
    if (p.sched.steps > 0 && p.hidden > 0) launch_backward_persistent(storage_type_of<T>(), &p);
  }
  // x: [n] -> sigmoid(x), tanh(x) as the kernels compute them (a test hook).
  template <typename T>
  void gate_activations(const T* x, T* sig, T* tanh, int64_t n) const {
    if (n > 0) launch_gate_activations(storage_type_of<T>(), x, sig, tanh, n);
  }

 protected:
  // params points at the ...Params<T> of the storage type `type`; the launch
  // has work (the empty ones stop above).
  template <typename Params>
  static const Params& params_of(const void* params) {
    return *static_cast<const Params*>(params);
  }
  virtual void launch_forward_step(StorageType type, const void* params, StepVariant v,
                                   bool save) const = 0;
  virtual void launch_backward_step(StorageType type, const void* params,
                                    StepVariant v) const = 0;
  virtual void launch_forward_persistent(StorageType type, const void* params,
                                         bool save) const = 0;
  virtual void launch_backward_persistent(StorageType type, const void* params) const = 0;
  virtual void launch_gate_activations(StorageType type, const void* x, void* sig, void* tanh,
                                       int64_t n) const = 0;
};

}  // namespace fastlstm
