// Every kernel instance an executor can launch, named by a tag type: the
// dispatch (kernel_dispatch.h) hands a tag to the executor's launcher, which
// turns it into something it can launch: a function pointer for nvcc and the
// emulator (kernel_entries.cuh), a function of an NVRTC module looked up by
// the tag's name expression. Torch-free and free of CUDA headers, so that the
// host side of every executor compiles it.
#pragma once

#include <string>

#include "step_params.h"

namespace fastlstm {

template <typename T, int kRowsPerThread, bool kSave>
struct ForwardStepKernel {};
template <typename T, bool kSave>
struct ForwardStepTensorCoreKernel {};
template <typename T, int kRowsPerThread>
struct BackwardStepKernel {};
template <typename T>
struct BackwardStepTensorCoreKernel {};
template <typename T, bool kSave>
struct ForwardPersistentKernel {};
template <typename T, int kRowsPerThread, bool kSave>
struct ForwardPersistent2dKernel {};
template <typename T>
struct BackwardPersistentKernel {};
template <typename T, int kRowsPerThread>
struct BackwardPersistent2dKernel {};
template <typename T, int kPass, bool kSave>
struct ForwardPersistent2dTensorCoreKernel {};
template <typename T, int kPass>
struct BackwardPersistent2dTensorCoreKernel {};
template <typename T>
struct GateActivationsKernel {};

// The kernels' template arguments as C++ spells them.
template <typename T>
const char* type_spelling();
template <>
inline const char* type_spelling<float>() { return "float"; }
template <>
inline const char* type_spelling<double>() { return "double"; }
template <>
inline const char* type_spelling<half_t>() { return "fastlstm::half_t"; }
template <>
inline const char* type_spelling<bfloat16_t>() { return "fastlstm::bfloat16_t"; }

// "fastlstm::name<T, extra...>": the instance as a name expression (NVRTC).
template <typename T>
std::string instance_name(const char* name, const std::string& extra = "") {
  return std::string("fastlstm::") + name + "<" + type_spelling<T>() + extra + ">";
}
inline std::string flag(bool b) { return b ? ", true" : ", false"; }

template <typename T, int R, bool S>
std::string name_expression(ForwardStepKernel<T, R, S>) {
  return instance_name<T>("lstm_forward_step", ", " + std::to_string(R) + flag(S));
}
template <typename T, bool S>
std::string name_expression(ForwardStepTensorCoreKernel<T, S>) {
  return instance_name<T>("lstm_forward_step_tensor_core", flag(S));
}
template <typename T, int R>
std::string name_expression(BackwardStepKernel<T, R>) {
  return instance_name<T>("lstm_backward_step", ", " + std::to_string(R));
}
template <typename T>
std::string name_expression(BackwardStepTensorCoreKernel<T>) {
  return instance_name<T>("lstm_backward_step_tensor_core");
}
template <typename T, bool S>
std::string name_expression(ForwardPersistentKernel<T, S>) {
  return instance_name<T>("lstm_forward_persistent", flag(S));
}
template <typename T, int R, bool S>
std::string name_expression(ForwardPersistent2dKernel<T, R, S>) {
  return instance_name<T>("lstm_forward_persistent2d", ", " + std::to_string(R) + flag(S));
}
template <typename T>
std::string name_expression(BackwardPersistentKernel<T>) {
  return instance_name<T>("lstm_backward_persistent");
}
template <typename T, int R>
std::string name_expression(BackwardPersistent2dKernel<T, R>) {
  return instance_name<T>("lstm_backward_persistent2d", ", " + std::to_string(R));
}
template <typename T, int P, bool S>
std::string name_expression(ForwardPersistent2dTensorCoreKernel<T, P, S>) {
  return instance_name<T>("lstm_forward_persistent2d_tensor_core", ", " + std::to_string(P) + flag(S));
}
template <typename T, int P>
std::string name_expression(BackwardPersistent2dTensorCoreKernel<T, P>) {
  return instance_name<T>("lstm_backward_persistent2d_tensor_core", ", " + std::to_string(P));
}
template <typename T>
std::string name_expression(GateActivationsKernel<T>) {
  return instance_name<T>("gate_activations");
}

}  // namespace fastlstm
