// The arguments of one op call, checked once and taken by every backend and
// executor: the CPU backend, and the shared glue of the CUDA kernels (nvcc,
// NVRTC and emulated executors). The checks are shared, so that every
// backend rejects the same inputs with the same messages.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

#include "kernel_choice.h"
#include "step_schedule.h"

namespace fastlstm {

using OptionalTensor = std::optional<at::Tensor>;

struct LayerShape {
  int64_t rows;    // N: rows of all steps together
  int64_t batch;   // B: rows of the first (widest) step
  int64_t input;   // I
  int64_t hidden;  // H
  int64_t proj;    // P: width of h (H when there is no projection)
};

// lstm_layer's arguments (csrc/lstm_op.cpp), then what the checks derive.
struct LayerArgs {
  at::Tensor input;                       // [N, I]
  at::Tensor h0;                          // [B, P]
  at::Tensor c0;                          // [B, H]
  at::Tensor w_ih;                        // [4H, I]
  at::Tensor w_hh;                        // [4H, P]
  OptionalTensor bias;         // [4H]: b_ih + b_hh
  OptionalTensor w_hr;         // [P, H]
  OptionalTensor batch_sizes;  // int64 [T] on the CPU; none: N = T * B
  bool reverse = false;
  bool save_workspace = false;
  KernelChoice kernel = KernelChoice::kAuto;
  // Float32 products may run as TF32: torch allows it for cuDNN's RNNs
  // (torch.backends.cudnn.allow_tf32, on by default), and so do we.
  bool allow_tf32 = false;
  LayerShape shape{};
  StepSchedule schedule;
};

// lstm_layer_backward's arguments: the forward's (no bias) and its results.
struct BackwardArgs {
  LayerArgs layer;
  at::Tensor grad_output;  // [N, P]
  at::Tensor grad_h_n;     // [B, P]
  at::Tensor grad_c_n;     // [B, H]
  at::Tensor output;       // [N, P]
  at::Tensor gates;        // [N, 4H], compute dtype: activated gates
  at::Tensor cells;        // [N, H], compute dtype: c_t of every row
};

using LayerOutputs = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
using LayerGrads =
    std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

// Half and bfloat16 tensors are computed, and their workspace kept, in float32.
at::ScalarType compute_dtype(at::ScalarType storage);

// The arguments as given, checked; with shape and schedule filled in.
LayerArgs checked(LayerArgs args);
BackwardArgs checked(BackwardArgs args);

}  // namespace fastlstm
