// Argument checks and the step schedule shared by every backend, so that the
// CPU and CUDA ops reject the same inputs with the same messages.
#pragma once

#include <ATen/core/Tensor.h>
#include <optional>

#include <vector>

namespace fastlstm {

struct LayerShape {
  int64_t rows;    // N: rows of all steps together
  int64_t batch;   // B: rows of the first (widest) step
  int64_t input;   // I
  int64_t hidden;  // H
  int64_t proj;    // P: width of h (H when there is no projection)
};

// Which rows each step owns, in the order the recurrence visits them.
struct StepSchedule {
  std::vector<int64_t> batch;   // rows of step t
  std::vector<int64_t> offset;  // first row of step t
  int64_t steps() const { return static_cast<int64_t>(batch.size()); }
  // Row of the state (h_{t-1}, c_{t-1}) that row b of step t continues from,
  // or -1 when it starts from h0/c0.
  int64_t prev_row(int64_t t, int64_t b, bool reverse) const;
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
