// Gradients of one layer direction that autograd can differentiate again,
// for backward passes asked to build a graph (create_graph=True: gradient
// penalties, MAML, Hessian-vector products). The fused backward op computes
// its gradients outside autograd; this path recomputes the layer from its
// saved inputs with composite ATen ops under autograd instead, so it runs on
// every device and costs nothing to the ordinary first-order backward.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/csrc/autograd/variable.h>

#include <array>

#include "lstm_args.h"

namespace fastlstm {

// Gradients with respect to input, h0, c0, w_ih, w_hh, bias and w_hr (an
// undefined tensor where `needed` is false or the argument is absent),
// themselves differentiable with respect to the inputs and to the incoming
// gradients. Undefined incoming gradients count as zeros.
// `in`: the layer's arguments, as given (checked here).
torch::autograd::variable_list differentiable_layer_grads(const LayerArgs& in,
                                                          const at::Tensor& grad_output,
                                                          const at::Tensor& grad_h_n,
                                                          const at::Tensor& grad_c_n,
                                                          const std::array<bool, 7>& needed);

}  // namespace fastlstm
