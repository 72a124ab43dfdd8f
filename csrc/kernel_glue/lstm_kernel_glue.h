// The torch side of the step kernels, shared by the CUDA backend and the
// emulated one: argument checks, buffers, the whole-sequence GEMMs through
// ATen, and the per-step launches through a StepKernels implementation.
#pragma once

#include <ATen/ATen.h>

#include <optional>

#include "../kernels/step_kernels.h"
#include "../widen.h"

namespace fastlstm {

LayerOutputs lstm_layer_with_kernels(const StepKernels& kernels, const at::Tensor& input,
                                     const at::Tensor& h0, const at::Tensor& c0,
                                     const at::Tensor& w_ih, const at::Tensor& w_hh,
                                     const std::optional<at::Tensor>& bias,
                                     const std::optional<at::Tensor>& w_hr,
                                     const std::optional<at::Tensor>& batch_sizes, bool reverse,
                                     bool save_workspace);

LayerGrads lstm_layer_backward_with_kernels(
    const StepKernels& kernels, const at::Tensor& grad_output, const at::Tensor& grad_h_n,
    const at::Tensor& grad_c_n, const at::Tensor& input, const at::Tensor& h0,
    const at::Tensor& c0, const at::Tensor& w_ih, const at::Tensor& w_hh,
    const std::optional<at::Tensor>& w_hr, const std::optional<at::Tensor>& batch_sizes,
    bool reverse, const at::Tensor& output, const at::Tensor& gates, const at::Tensor& cells);

}  // namespace fastlstm
