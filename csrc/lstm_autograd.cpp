// Autograd of the fastlstm ops, for every backend at once (the Autograd key
// sits above CPU and CUDA). It lives in C++ rather than in
// torch.library.register_autograd because the Python route costs about
// 70 µs a call in torch 2.13 (half of it fill_defaults rebuilding the
// schema's argument list once per argument), more than a whole LSTMCell
// step of nn.LSTMCell at small sizes.
#include <torch/autograd.h>
#include <torch/library.h>

#include "lstm_double_backward.h"
#include "op_handles.h"

namespace fastlstm {
namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

template <typename Tuple>
variable_list as_list(const Tuple& tensors) {
  return std::apply([](const auto&... t) { return variable_list{t...}; }, tensors);
}

Tensor defined_or_empty(const std::optional<Tensor>& t) { return t ? *t : Tensor(); }
std::optional<Tensor> present(const Tensor& t) {
  return t.defined() ? std::optional(t) : std::nullopt;
}
// Gradients of outputs that took no part in the loss arrive undefined: one
// zero expanded to the output's shape (the backends read a stride-0 gradient
// in place or copy it), not a buffer of zeros per call.
Tensor or_zeros_like(const Tensor& grad, const Tensor& like) {
  return grad.defined() ? grad : at::zeros({}, like.options()).expand(like.sizes());
}

struct LstmLayerFunction : torch::autograd::Function<LstmLayerFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& input, const Tensor& h0,
                               const Tensor& c0, const Tensor& w_ih, const Tensor& w_hh,
                               const std::optional<Tensor>& bias,
                               const std::optional<Tensor>& w_hr,
                               const std::optional<Tensor>& batch_sizes, bool reverse,
                               bool save_workspace) {
    at::AutoDispatchBelowADInplaceOrView below;
    auto [out, h_n, c_n, gates, cells] = layer_op().call(input, h0, c0, w_ih, w_hh, bias, w_hr,
                                                         batch_sizes, reverse, save_workspace);
    ctx->mark_non_differentiable({gates, cells});
    // Otherwise the unused workspace outputs would get gradients of zeros
    // as large as the forward's gate buffer at every backward.
    ctx->set_materialize_grads(false);
    ctx->save_for_backward({input, h0, c0, w_ih, w_hh, defined_or_empty(w_hr),
                            defined_or_empty(batch_sizes), out, gates, cells,
                            defined_or_empty(bias)});
    ctx->saved_data["reverse"] = reverse;
    ctx->saved_data["has_bias"] = bias.has_value();
    return {out, h_n, c_n, gates, cells};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    // create_graph=True: gradients that autograd can differentiate again.
    if (at::GradMode::is_enabled()) return differentiable_backward(ctx, saved, grads);
    const Tensor &input = saved[0], &h0 = saved[1], &c0 = saved[2], &out = saved[7];
    const std::optional<Tensor> w_hr = present(saved[5]);
    auto [grad_input, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_bias, grad_w_hr] =
        backward_op().call(
            or_zeros_like(grads[0], out), or_zeros_like(grads[1], h0),
            or_zeros_like(grads[2], c0), input, h0, c0, saved[3], saved[4], w_hr,
            present(saved[6]), ctx->saved_data["reverse"].toBool(), out, saved[8], saved[9]);
    return {grad_input, grad_h0, grad_c0, grad_w_ih, grad_w_hh,
            ctx->saved_data["has_bias"].toBool() ? grad_bias : Tensor(),
            w_hr ? grad_w_hr : Tensor(), Tensor(), Tensor(), Tensor()};
  }

  static variable_list differentiable_backward(AutogradContext* ctx, const variable_list& saved,
                                               const variable_list& grads) {
    const LayerArgs in{saved[0], saved[1], saved[2], saved[3], saved[4], present(saved[10]),
                       present(saved[5]), present(saved[6]), ctx->saved_data["reverse"].toBool()};
    // Autograd numbers only the tensors given: absent bias and w_hr have no edge.
    std::array<bool, 7> needed{};
    const std::array<bool, 7> given{true, true, true, true, true, in.bias.has_value(),
                                    in.w_hr.has_value()};
    for (size_t k = 0, edge = 0; k < needed.size(); ++k) {
      if (given[k]) needed[k] = ctx->needs_input_grad(edge++);
    }
    variable_list result = differentiable_layer_grads(in, grads[0], grads[1], grads[2], needed);
    result.resize(10);  // none for batch_sizes, reverse, save_workspace
    return result;
  }
};

// The backward op is differentiable only as far as saying it is not: its
// output, gates and cells are a forward's workspace, not free arguments.
// Second-order gradients come from differentiating through lstm_layer
// (create_graph=True), which never records this op.
struct LstmLayerBackwardFunction : torch::autograd::Function<LstmLayerBackwardFunction> {
  static variable_list forward(AutogradContext*, const Tensor& grad_output,
                               const Tensor& grad_h_n, const Tensor& grad_c_n,
                               const Tensor& input, const Tensor& h0, const Tensor& c0,
                               const Tensor& w_ih, const Tensor& w_hh,
                               const std::optional<Tensor>& w_hr,
                               const std::optional<Tensor>& batch_sizes, bool reverse,
                               const Tensor& output, const Tensor& gates, const Tensor& cells) {
    at::AutoDispatchBelowADInplaceOrView below;
    return as_list(backward_op().call(grad_output, grad_h_n, grad_c_n, input, h0, c0, w_ih, w_hh,
                                      w_hr, batch_sizes, reverse, output, gates, cells));
  }

  static variable_list backward(AutogradContext*, variable_list) {
    TORCH_CHECK(false,
                "fastlstm: lstm_layer_backward is not differentiable (its output, gates and "
                "cells arguments are a forward's workspace); for second-order gradients, "
                "differentiate through fastlstm.lstm_layer or the modules with "
                "create_graph=True");
  }
};

// Whether autograd will ask for gradients of any of these: otherwise the
// op runs without a node (building one costs more than a small cell step).
bool any_requires_grad(std::initializer_list<const Tensor*> tensors) {
  if (!at::GradMode::is_enabled()) return false;
  for (const Tensor* t : tensors) {
    if (t != nullptr && t->defined() && t->requires_grad()) return true;
  }
  return false;
}

LayerOutputs lstm_layer_autograd(const Tensor& input, const Tensor& h0, const Tensor& c0,
                                 const Tensor& w_ih, const Tensor& w_hh,
                                 const std::optional<Tensor>& bias,
                                 const std::optional<Tensor>& w_hr,
                                 const std::optional<Tensor>& batch_sizes, bool reverse,
                                 bool save_workspace) {
  if (!any_requires_grad({&input, &h0, &c0, &w_ih, &w_hh, bias ? &*bias : nullptr,
                          w_hr ? &*w_hr : nullptr})) {
    at::AutoDispatchBelowADInplaceOrView below;
    return layer_op().call(input, h0, c0, w_ih, w_hh, bias, w_hr, batch_sizes, reverse,
                           save_workspace);
  }
  const variable_list v = LstmLayerFunction::apply(input, h0, c0, w_ih, w_hh, bias, w_hr,
                                                   batch_sizes, reverse, save_workspace);
  return {v[0], v[1], v[2], v[3], v[4]};
}

LayerGrads lstm_layer_backward_autograd(
    const Tensor& grad_output, const Tensor& grad_h_n, const Tensor& grad_c_n,
    const Tensor& input, const Tensor& h0, const Tensor& c0, const Tensor& w_ih,
    const Tensor& w_hh, const std::optional<Tensor>& w_hr,
    const std::optional<Tensor>& batch_sizes, bool reverse, const Tensor& output,
    const Tensor& gates, const Tensor& cells) {
  const variable_list v = LstmLayerBackwardFunction::apply(
      grad_output, grad_h_n, grad_c_n, input, h0, c0, w_ih, w_hh, w_hr, batch_sizes, reverse,
      output, gates, cells);
  return {v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastlstm, Autograd, m) {
  m.impl("lstm_layer", &lstm_layer_autograd);
  m.impl("lstm_layer_backward", &lstm_layer_backward_autograd);
}

}  // namespace fastlstm
