// The bfloat16_t instances of the CUDA kernels and their launchers.
#include "step_launch.cuh"

namespace fastlstm::gpu {
FASTLSTM_INSTANTIATE_STEP_LAUNCH(bfloat16_t);
}  // namespace fastlstm::gpu
