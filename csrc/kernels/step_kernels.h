// What the torch glue needs from a kernel library: launches of the step
// kernels for each storage type, on the library's own stream or emulator.
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
};

}  // namespace fastlstm
