// The function each kernel tag (kernel_instances.h) names, for the executors
// that compile the kernels into the program (nvcc and the emulator).
#pragma once

#include "all_kernels.cuh"
#include "kernel_instances.h"

namespace fastlstm {

template <typename T, int R, bool S>
auto kernel_entry(ForwardStepKernel<T, R, S>) { return &lstm_forward_step<T, R, S>; }
template <typename T, bool S>
auto kernel_entry(ForwardStepTensorCoreKernel<T, S>) {
  return &lstm_forward_step_tensor_core<T, S>;
}
template <typename T, int R>
auto kernel_entry(BackwardStepKernel<T, R>) { return &lstm_backward_step<T, R>; }
template <typename T>
auto kernel_entry(BackwardStepTensorCoreKernel<T>) { return &lstm_backward_step_tensor_core<T>; }
template <typename T, bool S>
auto kernel_entry(ForwardPersistentKernel<T, S>) { return &lstm_forward_persistent<T, S>; }
template <typename T, int R, bool S>
auto kernel_entry(ForwardPersistent2dKernel<T, R, S>) {
  return &lstm_forward_persistent2d<T, R, S>;
}
template <typename T>
auto kernel_entry(BackwardPersistentKernel<T>) { return &lstm_backward_persistent<T>; }
template <typename T, int R>
auto kernel_entry(BackwardPersistent2dKernel<T, R>) {
  return &lstm_backward_persistent2d<T, R>;
}
template <typename T, int P, bool S>
auto kernel_entry(ForwardPersistent2dTensorCoreKernel<T, P, S>) {
  return &lstm_forward_persistent2d_tensor_core<T, P, S>;
}
template <typename T, int P>
auto kernel_entry(BackwardPersistent2dTensorCoreKernel<T, P>) {
  return &lstm_backward_persistent2d_tensor_core<T, P>;
}
template <typename T>
auto kernel_entry(GateActivationsKernel<T>) { return &gate_activations<T>; }

}  // namespace fastlstm
