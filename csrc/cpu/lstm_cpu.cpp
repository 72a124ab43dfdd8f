// CPU backend of the fastlstm ops. The input projection of all steps is one
// GEMM, each step one GEMM into the 4H gate buffer (gemm.h: ATen's oneDNN
// ukernel on weights as they lie, no per-step allocation) and one fused,
// vectorized elementwise pass (cell_loops.h); the backward mirrors it and
// takes the weight gradients as whole-sequence GEMMs.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstring>
#include <limits>
#include <tuple>
#include <type_traits>
#include <vector>

#include "../backend_switch.h"
#include "../emulated/lstm_emulated.h"
#include "../lstm_args.h"
#include "../widen.h"
#include "cell_loops.h"
#include "gemm.h"
#include "large_buffers.h"
#include "recurrent.h"

namespace fastlstm::cpu {
namespace {

using at::Tensor;

std::optional<Tensor> contiguous(const std::optional<Tensor>& t) {
  return t ? std::optional(t->contiguous()) : std::nullopt;
}

struct ForwardBuffers {
  Tensor gates;   // [N, 4H], or [chunk rows, 4H] in inference
  Tensor cells;   // [N, H], or [B, H] scratch in inference
  Tensor output;  // [N, P]
  Tensor h_state, c_state;  // [B, P], [B, H]: h0/c0 in, h_n/c_n out
  bool saved;     // gates and cells keep every step (for backward)
};

// The input projection of each chunk as one GEMM, then the steps in one
// persistent parallel region (recurrent.h); h_n is gathered at the end.
void run_forward_persistent(const LayerShape& s, const StepSchedule& sched, bool reverse,
                            const Tensor& input, const Tensor& w_ih, const Tensor& bias,
                            const Tensor& w_hh, const Tensor& h0, ForwardBuffers& buf) {
  const int64_t H = s.hidden;
  const Tensor w_ih_t = w_ih.t().contiguous();  // [I, 4H]
  const Tensor gate_panels = pack_gate_panels(w_hh);
  PersistentForward f{&sched, reverse, H, gate_panels.data_ptr<float>(), bias.data_ptr<float>(),
                      h0.data_ptr<float>(), nullptr, 0, buf.c_state.data_ptr<float>(),
                      buf.cells.data_ptr<float>(), buf.saved, buf.output.data_ptr<float>()};
  const int64_t chunk_rows = buf.saved ? std::numeric_limits<int64_t>::max() : kInferenceChunkRows;
  for (const StepChunk& chunk : step_chunks(sched, reverse, chunk_rows)) {
    f.gates_row0 = buf.saved ? 0 : chunk.row0;
    f.gates = buf.gates.data_ptr<float>();
    gemm<float>(chunk.rows, 4 * H, s.input, input.data_ptr<float>() + chunk.row0 * s.input,
                s.input, w_ih_t.data_ptr<float>(), 4 * H,
                f.gates + (chunk.row0 - f.gates_row0) * 4 * H, 4 * H, false);
    persistent_forward_steps(f, chunk.k_begin, chunk.k_end);
  }
  const std::vector<int64_t> last = sched.last_rows(reverse);
  float* h_n = buf.h_state.data_ptr<float>();
  for (size_t b = 0; b < last.size(); ++b) {
    std::memcpy(h_n + b * H, f.output + last[b] * H, H * sizeof(float));
  }
}

template <typename T>
void run_forward(const LayerShape& s, const StepSchedule& sched, bool reverse, const Tensor& input,
                 const Tensor& w_ih, const Tensor& bias, const Tensor& w_hh,
                 const std::optional<Tensor>& w_hr, ForwardBuffers& buf) {
  if constexpr (std::is_same_v<T, float>) {
    if (sched.steps() > 1 && use_persistent_forward(s, input.scalar_type(), w_hr.has_value())) {
      // h0 is read until the last step; h_n is written over it only after.
      run_forward_persistent(s, sched, reverse, input, w_ih, bias, w_hh, buf.h_state, buf);
      return;
    }
  }
  const int64_t H = s.hidden, P = s.proj;
  // Transposed copies for the GEMM ukernel pay off only over several steps.
  const bool reused = sched.steps() > 1;
  const Tensor w_ih_t = reused ? w_ih.t().contiguous() : Tensor();           // [I, 4H]
  const Tensor w_hh_t = reused ? w_hh.t().contiguous() : Tensor();           // [P, 4H]
  const Tensor w_hr_t = reused && w_hr ? w_hr->t().contiguous() : Tensor();  // [H, P]
  // With a projection, o*tanh(c) lands here before the [H -> P] GEMM.
  Tensor hidden = w_hr ? at::empty({s.batch, H}, buf.output.options()) : Tensor();
  const T* b = bias.data_ptr<T>();
  T* c = buf.c_state.data_ptr<T>();
  T* h_prev = buf.h_state.data_ptr<T>();
  const int64_t chunk_rows = buf.saved ? std::numeric_limits<int64_t>::max() : kInferenceChunkRows;
  for (const StepChunk& chunk : step_chunks(sched, reverse, chunk_rows)) {
    const int64_t row0 = chunk.row0;
    T* gates0 = buf.gates.data_ptr<T>() + (buf.saved ? row0 * 4 * H : 0);
    gemm_weight_t<T>(chunk.rows, 4 * H, s.input, input.data_ptr<T>() + row0 * s.input, s.input,
                     w_ih, w_ih_t, gates0, 4 * H, false);
    for (int64_t k = chunk.k_begin; k < chunk.k_end; ++k) {
      const int64_t t = sched.step_at(k, reverse);
      const int64_t rows = sched.batch[t], off = sched.offset[t];
      T* g = gates0 + (off - row0) * 4 * H;
      T* cell = buf.cells.data_ptr<T>() + (buf.saved ? off * H : 0);
      T* out = buf.output.data_ptr<T>() + off * P;
      T* h = w_hr ? hidden.data_ptr<T>() : out;
      gemm_weight_t<T>(rows, 4 * H, P, h_prev, P, w_hh, w_hh_t, g, 4 * H, true);
      for_each_unit_block(rows, H, [&](int64_t r, int64_t j0, int64_t j1) {
        forward_units<T>(H, j0, j1, g + r * 4 * H, b, c + r * H, cell + r * H, h + r * H);
      });
      if (w_hr) gemm_weight_t<T>(rows, P, H, h, H, *w_hr, w_hr_t, out, P, false);
      std::memcpy(h_prev, out, rows * P * sizeof(T));
    }
  }
}

LayerOutputs lstm_layer_cpu(
    const Tensor& input_, const Tensor& h0, const Tensor& c0, const Tensor& w_ih_,
    const Tensor& w_hh_, const std::optional<Tensor>& bias_, const std::optional<Tensor>& w_hr_,
    const std::optional<Tensor>& batch_sizes, bool reverse, bool save_workspace) {
  if (current_backend().emulated) {
    return emulated::lstm_layer(input_, h0, c0, w_ih_, w_hh_, bias_, w_hr_, batch_sizes, reverse,
                                save_workspace);
  }
  const LayerShape s = check_layer_args(input_, h0, c0, w_ih_, w_hh_, bias_, w_hr_, batch_sizes);
  if (is_widened(input_)) {
    return layer_in_float(lstm_layer_cpu, input_, h0, c0, w_ih_, w_hh_, bias_, w_hr_,
                          batch_sizes, reverse, save_workspace);
  }
  const StepSchedule sched = make_schedule(s, batch_sizes);
  const Tensor input = input_.contiguous(), w_ih = w_ih_.contiguous(), w_hh = w_hh_.contiguous();
  const auto opts = input.options();
  const Tensor bias = bias_ ? bias_->contiguous() : at::zeros({4 * s.hidden}, opts);
  const std::optional<Tensor> w_hr = contiguous(w_hr_);
  const int64_t gate_rows =
      save_workspace ? s.rows : std::min(s.rows, std::max(kInferenceChunkRows, s.batch));
  Tensor gates = empty_large({gate_rows, 4 * s.hidden}, opts);
  Tensor cells = empty_large({save_workspace ? s.rows : s.batch, s.hidden}, opts);
  Tensor output = empty_large({s.rows, s.proj}, opts);
  Tensor h_n = h0.contiguous().clone();
  Tensor c_n = c0.contiguous().clone();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "fastlstm::lstm_layer (CPU)", [&] {
    ForwardBuffers buf{gates, cells, output, h_n, c_n, save_workspace};
    run_forward<scalar_t>(s, sched, reverse, input, w_ih, bias, w_hh, w_hr, buf);
  });
  if (!save_workspace) {
    gates = at::empty({0, 4 * s.hidden}, opts);
    cells = at::empty({0, s.hidden}, opts);
  }
  return {output, h_n, c_n, gates, cells};
}

// Per-step backward; leaves dL/dh0, dL/dc0 in dh_state, dc_state and, with a
// projection, the total dL/dh_t of every row in dh_total (for grad_w_hr).
template <typename T>
void run_backward(const LayerShape& s, const StepSchedule& sched, bool reverse,
                  const Tensor& grad_output, const Tensor& c0, const Tensor& w_hh,
                  const std::optional<Tensor>& w_hr, const Tensor& gates, const Tensor& cells,
                  Tensor& dgates, Tensor& dh_state, Tensor& dc_state, Tensor& dh_total) {
  if constexpr (std::is_same_v<T, float>) {
    if (use_persistent_backward(s, gates.scalar_type(), w_hr.has_value())) {
      const Tensor column_panels = pack_column_panels(w_hh);
      persistent_backward_steps({&sched, reverse, s.hidden, column_panels.data_ptr<float>(),
                                 gates.data_ptr<float>(), cells.data_ptr<float>(),
                                 c0.data_ptr<float>(), grad_output.data_ptr<float>(),
                                 dh_state.data_ptr<float>(), dc_state.data_ptr<float>(),
                                 dgates.data_ptr<float>()});
      return;
    }
  }
  const int64_t H = s.hidden, P = s.proj;
  // With a projection dL/d(o*tanh c) comes from a GEMM and has no second term.
  Tensor dhidden = w_hr ? at::empty({s.batch, H}, gates.options()) : Tensor();
  Tensor zeros = w_hr ? at::zeros({s.batch, H}, gates.options()) : Tensor();
  std::vector<const T*> c_prev(s.batch);
  T* dh_next = dh_state.data_ptr<T>();
  T* dc = dc_state.data_ptr<T>();
  for (int64_t k = sched.steps() - 1; k >= 0; --k) {
    const int64_t t = sched.step_at(k, reverse);
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

// h_{t-1} of every row [N, P]: the right operand of grad_w_hh.
template <typename T>
Tensor step_inputs_prev(const StepSchedule& sched, bool reverse, const Tensor& output,
                        const Tensor& h0) {
  const int64_t P = output.size(1);
  Tensor h_prev = at::empty_like(output);
  for (int64_t t = 0; t < sched.steps(); ++t) {
    for (int64_t b = 0; b < sched.batch[t]; ++b) {
      const int64_t src = sched.prev_row(t, b, reverse);
      const T* from = src >= 0 ? output.data_ptr<T>() + src * P : h0.data_ptr<T>() + b * P;
      std::memcpy(h_prev.data_ptr<T>() + (sched.offset[t] + b) * P, from, P * sizeof(T));
    }
  }
  return h_prev;
}

// grad_w_ih = dgatesᵀ x and grad_w_hh = dgatesᵀ h_{t-1}. With every step full
// (no packing), h_{t-1} of the rows that continue from a step is a block of
// the output, read in place; the B rows that start from h0 add their product
// apart. Only packed sequences gather h_{t-1} into a copy the size of the
// output, which would otherwise sit at the peak of a training step's memory.
template <typename T>
void weight_grads(const LayerShape& s, const StepSchedule& sched, bool reverse,
                  const Tensor& dgates, const Tensor& input, const Tensor& output,
                  const Tensor& h0, Tensor& grad_w_ih, Tensor& grad_w_hh) {
  const int64_t G = 4 * s.hidden, I = s.input, P = s.proj;
  const T* dg = dgates.data_ptr<T>();
  const RightOperand<T> x_product{input.data_ptr<T>(), I, I, grad_w_ih.data_ptr<T>(), I};
  if (!sched.full() || s.rows == 0) {
    const Tensor h_prev = step_inputs_prev<T>(sched, reverse, output, h0);
    const RightOperand<T> products[] = {
        x_product, {h_prev.data_ptr<T>(), P, P, grad_w_hh.data_ptr<T>(), P}};
    gemm_a_t<T>(G, s.rows, dg, G, products, 2);
    return;
  }
  const FullStepRows r = full_step_rows(s.rows, s.batch, reverse);
  gemm_a_t<T>(G, s.rows, dg, G, &x_product, 1);
  Tensor h0_part = at::empty_like(grad_w_hh);
  const RightOperand<T> h0_product{h0.data_ptr<T>(), P, P, h0_part.data_ptr<T>(), P};
  gemm_a_t<T>(G, s.batch, dg + r.from_h0 * G, G, &h0_product, 1);
  if (r.carried == 0) {
    grad_w_hh.copy_(h0_part);
    return;
  }
  const RightOperand<T> output_product{output.data_ptr<T>() + r.source * P, P, P,
                                       grad_w_hh.data_ptr<T>(), P};
  gemm_a_t<T>(G, r.carried, dg + r.continuing * G, G, &output_product, 1);
  grad_w_hh.add_(h0_part);
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

LayerGrads lstm_layer_backward_cpu(
    const Tensor& grad_output_, const Tensor& grad_h_n, const Tensor& grad_c_n,
    const Tensor& input_, const Tensor& h0_, const Tensor& c0_, const Tensor& w_ih_,
    const Tensor& w_hh_, const std::optional<Tensor>& w_hr_,
    const std::optional<Tensor>& batch_sizes, bool reverse, const Tensor& output_,
    const Tensor& gates_, const Tensor& cells_) {
  if (current_backend().emulated) {
    return emulated::lstm_layer_backward(grad_output_, grad_h_n, grad_c_n, input_, h0_, c0_, w_ih_,
                                         w_hh_, w_hr_, batch_sizes, reverse, output_, gates_,
                                         cells_);
  }
  const LayerShape s =
      check_layer_args(input_, h0_, c0_, w_ih_, w_hh_, std::nullopt, w_hr_, batch_sizes);
  check_backward_args(s, grad_output_, grad_h_n, grad_c_n, output_, gates_, cells_);
  if (is_widened(input_)) {
    return layer_backward_in_float(lstm_layer_backward_cpu, grad_output_, grad_h_n, grad_c_n,
                                   input_, h0_, c0_, w_ih_, w_hh_, w_hr_, batch_sizes, reverse,
                                   output_, gates_, cells_);
  }
  const StepSchedule sched = make_schedule(s, batch_sizes);
  const Tensor grad_output = grad_output_.contiguous(), input = input_.contiguous();
  const Tensor h0 = h0_.contiguous(), c0 = c0_.contiguous();
  const Tensor w_ih = w_ih_.contiguous(), w_hh = w_hh_.contiguous();
  const Tensor output = output_.contiguous(), gates = gates_.contiguous();
  const Tensor cells = cells_.contiguous();
  const std::optional<Tensor> w_hr = contiguous(w_hr_);

  Tensor dgates = empty_large(gates.sizes(), gates.options());
  Tensor dh_state = grad_h_n.contiguous().clone();
  Tensor dc_state = grad_c_n.contiguous().clone();
  Tensor dh_total = w_hr ? at::empty_like(output) : Tensor();
  Tensor grad_input = empty_large(input.sizes(), input.options());
  Tensor grad_w_ih, grad_w_hh, grad_bias, grad_w_hr;
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "fastlstm::lstm_layer_backward (CPU)", [&] {
    run_backward<scalar_t>(s, sched, reverse, grad_output, c0, w_hh, w_hr, gates, cells, dgates,
                           dh_state, dc_state, dh_total);
    grad_w_ih = at::empty_like(w_ih);
    grad_w_hh = at::empty_like(w_hh);
    weight_grads<scalar_t>(s, sched, reverse, dgates, input, output, h0, grad_w_ih, grad_w_hh);
    grad_bias = column_sum<scalar_t>(dgates);
    gemm<scalar_t>(s.rows, s.input, 4 * s.hidden, dgates.data_ptr<scalar_t>(), 4 * s.hidden,
                   w_ih.data_ptr<scalar_t>(), s.input, grad_input.data_ptr<scalar_t>(), s.input,
                   false);
    grad_w_hr = w_hr ? at::mm(dh_total.t(), recompute_hidden<scalar_t>(gates, cells))
                     : at::empty({0}, input.options());
  });
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
