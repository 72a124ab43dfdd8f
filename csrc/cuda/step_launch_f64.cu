// The double instances of the CUDA kernels and their launchers.
#include "step_launch.cuh"

namespace fastlstm::gpu {
FASTLSTM_INSTANTIATE_STEP_LAUNCH(double);
template cudaError_t run_gate_activations<double>(const double*, double*, double*, int64_t, cudaStream_t);
}  // namespace fastlstm::gpu
