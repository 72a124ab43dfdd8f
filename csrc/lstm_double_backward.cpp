#include "lstm_double_backward.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <tuple>
#include <vector>


namespace fastlstm {
namespace {

using at::Tensor;

// One step of the gate equations of csrc/gate_math.h in composite ops
// (gate order i, f, g, o): the pre-activations and c_{t-1} of n rows to
// (h_t before any projection, c_t).
std::tuple<Tensor, Tensor> cell_step(const Tensor& pre, const Tensor& c_prev) {
  const std::vector<Tensor> gate = pre.chunk(4, 1);
  const Tensor i = gate[0].sigmoid(), f = gate[1].sigmoid(), g = gate[2].tanh();
  const Tensor o = gate[3].sigmoid();
  const Tensor c = f * c_prev + i * g;
  return {o * c.tanh(), c};
}

// The first n rows replaced by `head` (the rows a step ran), the others kept:
// rows past a step's batch hold their sequence's state, as in a PackedSequence.
Tensor with_head(const Tensor& head, const Tensor& state) {
  const int64_t n = head.size(0), rows = state.size(0);
  return n == rows ? head : at::cat({head, state.narrow(0, n, rows - n)});
}

// (output, h_n, c_n) of the layer, every op recorded by autograd; in the
// compute dtype (float32 for half and bfloat16, as the backends compute).
std::tuple<Tensor, Tensor, Tensor> layer_composite(const LayerArgs& unchecked) {
  const LayerArgs in = checked(unchecked);
  const LayerShape& s = in.shape;
  const StepSchedule& sched = in.schedule;
  const at::ScalarType dt = compute_dtype(in.input.scalar_type());
  const Tensor w_hh_t = in.w_hh.to(dt).t();
  const std::optional<Tensor> w_hr_t =
      in.w_hr ? std::optional(in.w_hr->to(dt).t()) : std::nullopt;
  Tensor projected = at::matmul(in.input.to(dt), in.w_ih.to(dt).t());
  if (in.bias) projected = projected + in.bias->to(dt);
  Tensor h = in.h0.to(dt), c = in.c0.to(dt);
  std::vector<Tensor> outputs(sched.steps());
  for (int64_t k = 0; k < sched.steps(); ++k) {
    const int64_t t = sched.step_at(k, in.reverse), n = sched.batch[t];
    const Tensor pre = projected.narrow(0, sched.offset[t], n) + h.narrow(0, 0, n).mm(w_hh_t);
    auto [h_t, c_t] = cell_step(pre, c.narrow(0, 0, n));
    if (w_hr_t) h_t = h_t.mm(*w_hr_t);
    outputs[t] = h_t;
    h = with_head(h_t, h);
    c = with_head(c_t, c);
  }
  const Tensor output = outputs.empty() ? at::zeros({0, s.proj}, h.options()) : at::cat(outputs);
  return {output, h, c};
}

Tensor or_zeros_like(const Tensor& grad, const Tensor& like) {
  return grad.defined() ? grad : at::zeros_like(like);
}

}  // namespace

torch::autograd::variable_list differentiable_layer_grads(const LayerArgs& in,
                                                          const Tensor& grad_output,
                                                          const Tensor& grad_h_n,
                                                          const Tensor& grad_c_n,
                                                          const std::array<bool, 7>& needed) {
  // Each argument asked for enters as a view of its own: then an argument
  // passed in two places (the same tensor as h0 and c0) gets each place's
  // gradient, not their sum twice.
  const std::array<std::optional<Tensor>, 7> args{in.input, in.h0,   in.c0,  in.w_ih,
                                                  in.w_hh,  in.bias, in.w_hr};
  std::array<std::optional<Tensor>, 7> vars = args;
  std::array<bool, 7> asked{};
  torch::autograd::variable_list wrt;
  for (size_t k = 0; k < args.size(); ++k) {
    asked[k] = needed[k] && args[k] && args[k]->requires_grad();
    if (!asked[k]) continue;
    vars[k] = args[k]->view_as(*args[k]);
    wrt.push_back(*vars[k]);
  }
  torch::autograd::variable_list grads(args.size());
  if (wrt.empty()) return grads;
  const LayerArgs on_vars{*vars[0], *vars[1], *vars[2], *vars[3], *vars[4],
                          vars[5],  vars[6],  in.batch_sizes, in.reverse};
  const auto [output, h_n, c_n] = layer_composite(on_vars);
  const auto dt = output.scalar_type();
  const torch::autograd::variable_list found = torch::autograd::grad(
      {output, h_n, c_n}, wrt,
      {or_zeros_like(grad_output, output).to(dt), or_zeros_like(grad_h_n, h_n).to(dt),
       or_zeros_like(grad_c_n, c_n).to(dt)},
      /*retain_graph=*/true, /*create_graph=*/true, /*allow_unused=*/true);
  size_t next = 0;
  for (size_t k = 0; k < args.size(); ++k) {
    if (!asked[k]) continue;
    const Tensor& g = found[next++];
    grads[k] = g.defined() ? g : at::zeros_like(*args[k]);
  }
  return grads;
}

}  // namespace fastlstm
