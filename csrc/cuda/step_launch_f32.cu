// The float instances of the CUDA kernels and their launchers.
#include "step_launch.cuh"

namespace fastlstm::gpu {
FASTLSTM_INSTANTIATE_STEP_LAUNCH(float);
}  // namespace fastlstm::gpu
