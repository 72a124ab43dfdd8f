// A StepKernels whose every launch goes through the dispatch
// (kernel_dispatch.h) with the launcher that Derived::launcher(type) gives:
// the executors that launch from host code of their own (the emulator's
// threads, the driver for NVRTC's modules).
#pragma once

#include "kernel_dispatch.h"
#include "step_kernels.h"

namespace fastlstm {

template <typename Derived>
class DispatchedStepKernels : public StepKernels {
 protected:
  void launch_forward_step(StorageType type, const void* p, StepVariant v,
                           bool save) const override {
    visit_storage(type, [&](auto tag) {
      dispatch_forward_step(params_of<ForwardStepParams<decltype(tag)>>(p), v, save,
                            derived().launcher(type));
    });
  }
  void launch_backward_step(StorageType type, const void* p, StepVariant v) const override {
    visit_storage(type, [&](auto tag) {
      dispatch_backward_step(params_of<BackwardStepParams<decltype(tag)>>(p), v,
                             derived().launcher(type));
    });
  }
  void launch_forward_persistent(StorageType type, const void* p, bool save) const override {
    visit_storage(type, [&](auto tag) {
      dispatch_persistent_forward(params_of<PersistentForwardParams<decltype(tag)>>(p), save,
                                  derived().launcher(type));
    });
  }
  void launch_backward_persistent(StorageType type, const void* p) const override {
    visit_storage(type, [&](auto tag) {
      dispatch_persistent_backward(params_of<PersistentBackwardParams<decltype(tag)>>(p),
                                   derived().launcher(type));
    });
  }
  void launch_gate_activations(StorageType type, const void* x, void* sig, void* tanh,
                               int64_t n) const override {
    visit_storage(type, [&](auto tag) {
      using T = decltype(tag);
      dispatch_gate_activations(static_cast<const T*>(x), static_cast<T*>(sig),
                                static_cast<T*>(tanh), n, derived().launcher(type));
    });
  }

 private:
  const Derived& derived() const { return static_cast<const Derived&>(*this); }
};

}  // namespace fastlstm
