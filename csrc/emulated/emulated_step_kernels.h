// The step kernels of csrc/kernels compiled for the CPU SIMT emulator
// (csrc/sim), behind the same StepKernels interface as the CUDA library.
// Torch-free: the emulator's CUDA keywords stay out of the torch glue.
#pragma once

#include <cstdint>
#include <memory>

#include "../kernels/step_kernels.h"

namespace fastlstm::emulated {

enum class Order { kForward, kReverse, kRandom };

// Kernels that run under the given scheduling order (seed: for kRandom).
std::unique_ptr<StepKernels> make_step_kernels(Order order, uint64_t seed);

}  // namespace fastlstm::emulated
