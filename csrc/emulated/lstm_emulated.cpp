#include "lstm_emulated.h"

#include "../backend_switch.h"
#include "../kernel_glue/lstm_kernel_glue.h"
#include "emulated_step_kernels.h"

namespace fastlstm::emulated {
namespace {

std::unique_ptr<StepKernels> kernels_for_current_backend() {
  const BackendChoice choice = current_backend();
  const Order order = choice.order == "reverse"  ? Order::kReverse
                      : choice.order == "random" ? Order::kRandom
                                                 : Order::kForward;
  return make_step_kernels(order, static_cast<uint64_t>(choice.seed));
}

}  // namespace

LayerOutputs lstm_layer(const at::Tensor& input, const at::Tensor& h0, const at::Tensor& c0,
                        const at::Tensor& w_ih, const at::Tensor& w_hh,
                        const std::optional<at::Tensor>& bias,
                        const std::optional<at::Tensor>& w_hr,
                        const std::optional<at::Tensor>& batch_sizes, bool reverse,
                        bool save_workspace) {
  return lstm_layer_with_kernels(*kernels_for_current_backend(), input, h0, c0, w_ih, w_hh, bias,
                                 w_hr, batch_sizes, reverse, save_workspace);
}

LayerGrads lstm_layer_backward(const at::Tensor& grad_output, const at::Tensor& grad_h_n,
                               const at::Tensor& grad_c_n, const at::Tensor& input,
                               const at::Tensor& h0, const at::Tensor& c0,
                               const at::Tensor& w_ih, const at::Tensor& w_hh,
                               const std::optional<at::Tensor>& w_hr,
                               const std::optional<at::Tensor>& batch_sizes, bool reverse,
                               const at::Tensor& output, const at::Tensor& gates,
                               const at::Tensor& cells) {
  return lstm_layer_backward_with_kernels(*kernels_for_current_backend(), grad_output, grad_h_n,
                                          grad_c_n, input, h0, c0, w_ih, w_hh, w_hr, batch_sizes,
                                          reverse, output, gates, cells);
}

}  // namespace fastlstm::emulated
