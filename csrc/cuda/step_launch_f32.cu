// The float instances of the CUDA kernels and their launchers.
#include "step_launch.cuh"

namespace fastlstm::gpu {
FASTLSTM_INSTANTIATE_STEP_LAUNCH(float);
template cudaError_t run_gate_activations<float>(const float*, float*, float*, int64_t, cudaStream_t);
}  // namespace fastlstm::gpu
