// The executor of the kernels that nvcc compiled into the extension (built
// where nvcc and a CUDA build of torch were both present at install).
#pragma once

#include <memory>

#include "../kernels/step_kernels.h"

namespace fastlstm::gpu {

// Launches on `stream` (a cudaStream_t) of the current device `device`.
std::unique_ptr<StepKernels> nvcc_step_kernels(int device, void* stream);

}  // namespace fastlstm::gpu
