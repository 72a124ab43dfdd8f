// The ops on CPU tensors run through the CUDA kernels under the SIMT
// emulator, selected by fastlstm.backend("emulated"); the CPU backend hands
// its calls here while that switch is on.
#pragma once

#include "../widen.h"

namespace fastlstm::emulated {

LayerOutputs lstm_layer(const at::Tensor& input, const at::Tensor& h0, const at::Tensor& c0,
                        const at::Tensor& w_ih, const at::Tensor& w_hh,
                        const std::optional<at::Tensor>& bias,
                        const std::optional<at::Tensor>& w_hr,
                        const std::optional<at::Tensor>& batch_sizes, bool reverse,
                        bool save_workspace);

LayerGrads lstm_layer_backward(const at::Tensor& grad_output, const at::Tensor& grad_h_n,
                               const at::Tensor& grad_c_n, const at::Tensor& input,
                               const at::Tensor& h0, const at::Tensor& c0,
                               const at::Tensor& w_ih, const at::Tensor& w_hh,
                               const std::optional<at::Tensor>& w_hr,
                               const std::optional<at::Tensor>& batch_sizes, bool reverse,
                               const at::Tensor& output, const at::Tensor& gates,
                               const at::Tensor& cells);

}  // namespace fastlstm::emulated
