// Argument checks and the step schedule shared by every backend, so that the
// CPU and CUDA ops reject the same inputs with the same messages.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

#include "step_schedule.h"

namespace fastlstm {

struct LayerShape {
  int64_t rows;    // N: rows of all steps together
  int64_t batch;   // B: rows of the first (widest) step
  int64_t input;   // I
  int64_t hidden;  // H
  int64_t proj;    // P: width of h (H when there is no projection)
};

// Half and bfloat16 tensors are computed, and their workspace kept, in float32.
at::ScalarType compute_dtype(at::ScalarType storage);

LayerShape check_layer_args(const at::Tensor& input, const at::Tensor& h0, const at::Tensor& c0,
                            const at::Tensor& w_ih, const at::Tensor& w_hh,
                            const std::optional<at::Tensor>& bias,
                            const std::optional<at::Tensor>& w_hr,
                            const std::optional<at::Tensor>& batch_sizes);

void check_backward_args(const LayerShape& shape, const at::Tensor& grad_output,
                         const at::Tensor& grad_h_n, const at::Tensor& grad_c_n,
                         const at::Tensor& output, const at::Tensor& gates,
                         const at::Tensor& cells);

StepSchedule make_schedule(const LayerShape& shape, const std::optional<at::Tensor>& batch_sizes);

}  // namespace fastlstm
