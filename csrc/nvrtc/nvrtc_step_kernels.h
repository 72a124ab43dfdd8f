// The executor of the kernels compiled at run time by NVRTC: for a CUDA
// build of torch installed without nvcc (pip install "fastlstm[nvrtc]").
// Each storage type's kernels are compiled at first use for the device's own
// arch (or read from the disk cache), loaded through the driver, and
// launched on torch's current stream.
#pragma once

#include <memory>

#include "../kernels/step_kernels.h"

namespace fastlstm::nvrtc {

// Launches on `stream` (a CUstream) of the current device `device`.
std::unique_ptr<StepKernels> nvrtc_step_kernels(int device, void* stream);

}  // namespace fastlstm::nvrtc
