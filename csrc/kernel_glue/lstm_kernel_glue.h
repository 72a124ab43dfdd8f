// The torch side of the CUDA kernels, shared by their executors (the
// nvcc-built library, the NVRTC one and the SIMT emulator): buffers, the
// whole-sequence GEMMs through ATen, and the per-step launches through a
// StepKernels implementation.
#pragma once

#include <ATen/core/Tensor.h>

#include "../kernels/step_kernels.h"
#include "../lstm_args.h"

namespace fastlstm {

LayerOutputs lstm_layer_with_kernels(const StepKernels& kernels, const LayerArgs& args);

LayerGrads lstm_layer_backward_with_kernels(const StepKernels& kernels, const BackwardArgs& args);

}  // namespace fastlstm
