// CPU backend of the fastlstm ops: whole-sequence GEMMs and per-step GEMMs go
// through ATen (MKL/oneDNN) into preallocated buffers; everything elementwise
// is one fused, vectorized pass per step (cell_loops.h).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstring>
#include <tuple>
#include <vector>

#include "../lstm_args.h"
#include "cell_loops.h"
#include "gemm.h"

namespace fastlstm::cpu {
namespace {

using at::Tensor;

std::optional<Tensor> contiguous(const std::optional<Tensor>& t) {
  return t ? std::optional(t->contiguous()) : std::nullopt;
}

// Order in which the forward recurrence visits the steps.
int64_t step_at(int64_t k, int64_t steps, bool reverse) {
  return reverse ? steps - 1 - k : k;
}

template <typename T>
void run_forward(const LayerShape& s, const StepSchedule& sched, bool reverse, const Tensor& bias,
                 const Tensor& w_hh, const std::optional<Tensor>& w_hr, Tensor& gates,
                 Tensor& cells, Tensor& output, Tensor& h_state, Tensor& c_state) {
  const int64_t H = s.hidden, P = s.proj;
  const Tensor w_hh_t = w_hh.t().contiguous();  // [P, 4H]
  const Tensor w_hr_t = w_hr ? w_hr->t().contiguous() : Tensor();  // [H, P]
  // With a projection, o*tanh(c) lands here before the [H -> P] GEMM.
  Tensor hidden = w_hr ? at::empty({s.batch, H}, gates.options()) : Tensor();
  const T* b = bias.data_ptr<T>();
  T* c = c_state.data_ptr<T>();
  T* h_prev = h_state.data_ptr<T>();
  for (int64_t k = 0; k < sched.steps(); ++k) {
    const int64_t t = step_at(k, sched.steps(), reverse);
    const int64_t rows = sched.batch[t], off = sched.offset[t];
    T* g = gates.data_ptr<T>() + off * 4 * H;
    T* cell = cells.data_ptr<T>() + off * H;
    T* out = output.data_ptr<T>() + off * P;
    T* h = w_hr ? hidden.data_ptr<T>() : out;
    gemm<T>(rows, 4 * H, P, h_prev, P, w_hh_t.data_ptr<T>(), 4 * H, g, 4 * H, true);
    for_each_unit_block(rows, H, [&](int64_t r, int64_t j0, int64_t j1) {
      forward_units<T>(H, j0, j1, g + r * 4 * H, b, c + r * H, cell + r * H, h + r * H);
    });
    if (w_hr) gemm<T>(rows, P, H, h, H, w_hr_t.data_ptr<T>(), P, out, P, false);
    std::memcpy(h_prev, out, rows * P * sizeof(T));
  }
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> lstm_layer_cpu(
    const Tensor& input_, const Tensor& h0, const Tensor& c0, const Tensor& w_ih_,
    const Tensor& w_hh_, const std::optional<Tensor>& bias_, const std::optional<Tensor>& w_hr_,
    const std::optional<Tensor>& batch_sizes, bool reverse) {
  const LayerShape s = check_layer_args(input_, h0, c0, w_ih_, w_hh_, bias_, w_hr_, batch_sizes);
  const StepSchedule sched = make_schedule(s, batch_sizes);
  const Tensor input = input_.contiguous(), w_ih = w_ih_.contiguous(), w_hh = w_hh_.contiguous();
  const auto opts = input.options();
  const Tensor bias = bias_ ? bias_->contiguous() : at::zeros({4 * s.hidden}, opts);
  const std::optional<Tensor> w_hr = contiguous(w_hr_);

  Tensor gates = at::empty({s.rows, 4 * s.hidden}, opts);
  Tensor cells = at::empty({s.rows, s.hidden}, opts);
  Tensor output = at::empty({s.rows, s.proj}, opts);
  Tensor h_n = h0.contiguous().clone();
  Tensor c_n = c0.contiguous().clone();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "fastlstm::lstm_layer (CPU)", [&] {
    const Tensor w_ih_t = w_ih.t().contiguous();  // [I, 4H]
    gemm<scalar_t>(s.rows, 4 * s.hidden, s.input, input.data_ptr<scalar_t>(), s.input,
                   w_ih_t.data_ptr<scalar_t>(), 4 * s.hidden, gates.data_ptr<scalar_t>(),
                   4 * s.hidden, false);
    run_forward<scalar_t>(s, sched, reverse, bias, w_hh, w_hr, gates, cells, output, h_n, c_n);
  });
  return {output, h_n, c_n, gates, cells};
}

// Per-step backward; leaves dL/dh0, dL/dc0 in dh_state, dc_state and, with a
// projection, the total dL/dh_t of every row in dh_total (for grad_w_hr).
template <typename T>
void run_backward(const LayerShape& s, const StepSchedule& sched, bool reverse,
                  const Tensor& grad_output, const Tensor& c0, const Tensor& w_hh,
                  const std::optional<Tensor>& w_hr, const Tensor& gates, const Tensor& cells,
                  Tensor& dgates, Tensor& dh_state, Tensor& dc_state, Tensor& dh_total) {
  const int64_t H = s.hidden, P = s.proj;
  // With a projection dL/d(o*tanh c) comes from a GEMM and has no second term.
  Tensor dhidden = w_hr ? at::empty({s.batch, H}, gates.options()) : Tensor();
  Tensor zeros = w_hr ? at::zeros({s.batch, H}, gates.options()) : Tensor();
  std::vector<const T*> c_prev(s.batch);
  T* dh_next = dh_state.data_ptr<T>();
  T* dc = dc_state.data_ptr<T>();
  for (int64_t k = sched.steps() - 1; k >= 0; --k) {
    const int64_t t = step_at(k, sched.steps(), reverse);
    const int64_t rows = sched.batch[t], off = sched.offset[t];
    for (int64_t b = 0; b < rows; ++b) {
      const int64_t prev = sched.prev_row(t, b, reverse);
      c_prev[b] = prev >= 0 ? cells.data_ptr<T>() + prev * H : c0.data_ptr<T>() + b * H;
    }
    const T* dh = grad_output.data_ptr<T>() + off * P;
    const T* dh_recurrent = dh_next;
    if (w_hr) {
      T* dh_t = dh_total.data_ptr<T>() + off * P;
      for (int64_t i = 0; i < rows * P; ++i) dh_t[i] = dh[i] + dh_next[i];
      gemm<T>(rows, H, P, dh_t, P, w_hr->data_ptr<T>(), H, dhidden.data_ptr<T>(), H, false);
      dh = dhidden.data_ptr<T>();
      dh_recurrent = zeros.data_ptr<T>();
    }
    const T* g = gates.data_ptr<T>() + off * 4 * H;
    const T* c = cells.data_ptr<T>() + off * H;
    T* dg = dgates.data_ptr<T>() + off * 4 * H;
    for_each_unit_block(rows, H, [&](int64_t r, int64_t j0, int64_t j1) {
      backward_units<T>(H, j0, j1, g + r * 4 * H, c + r * H, c_prev[r], dh + r * H,
                        dh_recurrent + r * H, dc + r * H, dg + r * 4 * H);
    });
    gemm<T>(rows, P, 4 * H, dg, 4 * H, w_hh.data_ptr<T>(), P, dh_next, P, false);
  }
}

// h_{t-1} of every row, in row order: the right operand of grad_w_hh.
template <typename T>
Tensor gather_prev_hidden(const StepSchedule& sched, bool reverse, const Tensor& output,
                          const Tensor& h0) {
  const int64_t P = output.size(1);
  Tensor prev = at::empty_like(output);
  for (int64_t t = 0; t < sched.steps(); ++t) {
    for (int64_t b = 0; b < sched.batch[t]; ++b) {
      const int64_t src = sched.prev_row(t, b, reverse);
      const T* from = src >= 0 ? output.data_ptr<T>() + src * P : h0.data_ptr<T>() + b * P;
      std::memcpy(prev.data_ptr<T>() + (sched.offset[t] + b) * P, from, P * sizeof(T));
    }
  }
  return prev;
}

// o * tanh(c) of every row, from the workspace: the right operand of grad_w_hr.
template <typename T>
Tensor recompute_hidden(const Tensor& gates, const Tensor& cells) {
  const int64_t H = cells.size(1);
  Tensor hidden = at::empty_like(cells);
  const T* g = gates.data_ptr<T>();
  const T* c = cells.data_ptr<T>();
  T* h = hidden.data_ptr<T>();
  for_each_unit_block(cells.size(0), H, [&](int64_t r, int64_t j0, int64_t j1) {
    hidden_units<T>(H, j0, j1, g + r * 4 * H, c + r * H, h + r * H);
  });
  return hidden;
}

// Sum over rows in a fixed order per column, whatever the thread count.
template <typename T>
Tensor column_sum(const Tensor& x) {
  const int64_t rows = x.size(0), cols = x.size(1);
  Tensor out = at::empty({cols}, x.options());
  const T* in = x.data_ptr<T>();
  T* o = out.data_ptr<T>();
  at::parallel_for(0, cols, 64, [&](int64_t c0, int64_t c1) {
    std::vector<double> acc(c1 - c0, 0.0);
    for (int64_t r = 0; r < rows; ++r) {
      const T* row = in + r * cols;
      for (int64_t c = c0; c < c1; ++c) acc[c - c0] += row[c];
    }
    for (int64_t c = c0; c < c1; ++c) o[c] = static_cast<T>(acc[c - c0]);
  });
  return out;
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> lstm_layer_backward_cpu(
    const Tensor& grad_output_, const Tensor& grad_h_n, const Tensor& grad_c_n,
    const Tensor& input_, const Tensor& h0_, const Tensor& c0_, const Tensor& w_ih_,
    const Tensor& w_hh_, const std::optional<Tensor>& w_hr_,
    const std::optional<Tensor>& batch_sizes, bool reverse, const Tensor& output_,
    const Tensor& gates_, const Tensor& cells_) {
  const LayerShape s =
      check_layer_args(input_, h0_, c0_, w_ih_, w_hh_, std::nullopt, w_hr_, batch_sizes);
  check_backward_args(s, grad_output_, grad_h_n, grad_c_n, output_, gates_, cells_);
  const StepSchedule sched = make_schedule(s, batch_sizes);
  const Tensor grad_output = grad_output_.contiguous(), input = input_.contiguous();
  const Tensor h0 = h0_.contiguous(), c0 = c0_.contiguous();
  const Tensor w_ih = w_ih_.contiguous(), w_hh = w_hh_.contiguous();
  const Tensor output = output_.contiguous(), gates = gates_.contiguous();
  const Tensor cells = cells_.contiguous();
  const std::optional<Tensor> w_hr = contiguous(w_hr_);

  Tensor dgates = at::empty_like(gates);
  Tensor dh_state = grad_h_n.contiguous().clone();
  Tensor dc_state = grad_c_n.contiguous().clone();
  Tensor dh_total = w_hr ? at::empty_like(output) : Tensor();
  Tensor grad_input = at::empty_like(input);
  Tensor grad_w_hh, grad_bias, grad_w_hr;
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "fastlstm::lstm_layer_backward (CPU)", [&] {
    run_backward<scalar_t>(s, sched, reverse, grad_output, c0, w_hh, w_hr, gates, cells, dgates,
                           dh_state, dc_state, dh_total);
    grad_w_hh = at::mm(dgates.t(), gather_prev_hidden<scalar_t>(sched, reverse, output, h0));
    grad_bias = column_sum<scalar_t>(dgates);
    gemm<scalar_t>(s.rows, s.input, 4 * s.hidden, dgates.data_ptr<scalar_t>(), 4 * s.hidden,
                   w_ih.data_ptr<scalar_t>(), s.input, grad_input.data_ptr<scalar_t>(), s.input,
                   false);
    grad_w_hr = w_hr ? at::mm(dh_total.t(), recompute_hidden<scalar_t>(gates, cells))
                     : at::empty({0}, input.options());
  });
  Tensor grad_w_ih = at::mm(dgates.t(), input);
  return {grad_input, dh_state, dc_state, grad_w_ih, grad_w_hh, grad_bias, grad_w_hr};
}

std::tuple<Tensor, Tensor> gate_activations_cpu(const Tensor& x_) {
  const Tensor x = x_.contiguous();
  Tensor sig = at::empty_like(x), tanh = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fastlstm::_gate_activations (CPU)", [&] {
    activation_units<scalar_t>(x.numel(), x.data_ptr<scalar_t>(), sig.data_ptr<scalar_t>(),
                               tanh.data_ptr<scalar_t>());
  });
  return {sig, tanh};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastlstm, CPU, m) {
  m.impl("lstm_layer", &lstm_layer_cpu);
  m.impl("lstm_layer_backward", &lstm_layer_backward_cpu);
  m.impl("_gate_activations", &gate_activations_cpu);
}

}  // namespace fastlstm::cpu
