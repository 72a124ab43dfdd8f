// The process-wide choice behind fastlstm.backend(...): whether CPU tensors
// run the native CPU backend or the CUDA kernels under the SIMT emulator,
// which kernel variant the glue uses (on CUDA too), and the emulator's
// thread scheduling order.
#pragma once

#include <cstdint>
#include <string>
#include <tuple>

namespace fastlstm {

struct BackendChoice {
  bool emulated = false;
  // auto | step | step_narrow | step_wide | tensor_core | persistent |
  // persistent_tensor_core
  std::string kernel = "auto";
  std::string order = "forward";  // forward | reverse | random
  int64_t seed = 0;
};

BackendChoice current_backend();

// Bodies of the ops fastlstm::_set_backend and fastlstm::_get_backend.
void set_backend(const std::string& name, const std::string& kernel, const std::string& order,
                 int64_t seed);
std::tuple<std::string, std::string, std::string, int64_t> get_backend();

// The kernel the glue chose for the last layer forward it ran (for reports):
// step_narrow, step_wide, tensor_core or persistent; empty before any. Body of the op
// fastlstm::_last_kernel.
void record_kernel(const char* name);
std::string last_kernel();

}  // namespace fastlstm
