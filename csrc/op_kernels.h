// The ops' C++ signatures (the schemas of csrc/lstm_op.cpp), and the adapter
// that turns a backend's implementation, which takes the checked argument
// struct, into the kernel the dispatcher calls: the only place outside the
// autograd where the op's parameter lists are spelled out.
#pragma once

#include "lstm_args.h"

namespace fastlstm {

using LayerOpSignature = LayerOutputs(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                      const at::Tensor&, const at::Tensor&, const OptionalTensor&,
                                      const OptionalTensor&, const OptionalTensor&, bool, bool);
using BackwardOpSignature = LayerGrads(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                       const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                       const at::Tensor&, const at::Tensor&, const OptionalTensor&,
                                       const OptionalTensor&, bool, const at::Tensor&, const at::Tensor&,
                                       const at::Tensor&);

// lstm_layer's kernel: the arguments checked, the kernel choice read once.
template <LayerOutputs (*Run)(const LayerArgs&)>
LayerOutputs layer_kernel(const at::Tensor& input, const at::Tensor& h0, const at::Tensor& c0,
                          const at::Tensor& w_ih, const at::Tensor& w_hh, const OptionalTensor& bias,
                          const OptionalTensor& w_hr, const OptionalTensor& batch_sizes, bool reverse,
                          bool save_workspace) {
  return Run(checked(LayerArgs{input, h0, c0, w_ih, w_hh, bias, w_hr, batch_sizes, reverse,
                               save_workspace, requested_kernel()}));
}

// lstm_layer_backward's kernel, likewise.
template <LayerGrads (*Run)(const BackwardArgs&)>
LayerGrads backward_kernel(const at::Tensor& grad_output, const at::Tensor& grad_h_n,
                           const at::Tensor& grad_c_n, const at::Tensor& input, const at::Tensor& h0,
                           const at::Tensor& c0, const at::Tensor& w_ih, const at::Tensor& w_hh,
                           const OptionalTensor& w_hr, const OptionalTensor& batch_sizes, bool reverse,
                           const at::Tensor& output, const at::Tensor& gates, const at::Tensor& cells) {
  LayerArgs layer{input, h0, c0, w_ih, w_hh, std::nullopt, w_hr, batch_sizes, reverse, false,
                  requested_kernel()};
  return Run(checked(BackwardArgs{std::move(layer), grad_output, grad_h_n, grad_c_n, output,
                                  gates, cells}));
}

}  // namespace fastlstm
