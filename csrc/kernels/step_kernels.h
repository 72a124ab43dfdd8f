// What the torch glue needs from a kernel library: launches of the step and
// persistent kernels for each storage type, on the library's own stream or
// emulator, and what the device can hold.
// Torch-free; implemented by csrc/cuda (GPU) and csrc/emulated (CPU SIMT
// emulator).
#pragma once

#include "step_params.h"

namespace fastlstm {

class StepKernels {
 public:
  virtual ~StepKernels() = default;
  virtual void forward(const ForwardStepParams<float>& p, StepVariant v, bool save) const = 0;
  virtual void forward(const ForwardStepParams<double>& p, StepVariant v, bool save) const = 0;
  virtual void backward(const BackwardStepParams<float>& p, StepVariant v) const = 0;
  virtual void backward(const BackwardStepParams<double>& p, StepVariant v) const = 0;
  // Streaming multiprocessors the blocks of one step can spread over.
  virtual int multiprocessors() const = 0;

  // Persistent kernels: one cooperative launch for many steps.
  virtual void forward_persistent(const PersistentForwardParams<float>& p, bool save) const = 0;
  virtual void forward_persistent(const PersistentForwardParams<double>& p, bool save) const = 0;
  virtual void backward_persistent(const PersistentBackwardParams<float>& p) const = 0;
  virtual void backward_persistent(const PersistentBackwardParams<double>& p) const = 0;
  // Blocks of a persistent kernel (backward or forward, double or float)
  // with `shared_bytes` of dynamic shared memory each that can be resident
  // at once: the largest cooperative grid; 0 when it cannot launch at all.
  virtual int persistent_capacity(bool backward, bool is_double, size_t shared_bytes) const = 0;
};

}  // namespace fastlstm
