// CPU backend of the fastlstm ops: the torch side (checks, buffers, threads)
// of the CPU engine (engine.h), which does the arithmetic.
//
// Forward: the steps in one team (a persistent recurrence with W_hh packed
// per member), which also project their input where that pays
// (steps_project_input); elsewhere x W_ihᵀ of a chunk of steps comes first
// as one product. Backward: the recurrence chunk by chunk from the last
// step, each chunk's gate gradients followed at once by their share of the
// whole-sequence products (grad_input, grad_w_ih, grad_w_hh, grad_bias), so
// that only one chunk of gate gradients is ever held. A single step (an
// LSTMCell) skips the packing: its products read the weights as they lie.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstring>
#include <limits>
#include <tuple>
#include <vector>

#include "../backend_switch.h"
#include "../emulated/lstm_emulated.h"
#include "../lstm_args.h"
#include "../widen.h"
#include "engine.h"
#include "large_buffers.h"

namespace fastlstm::cpu {
namespace {

using at::Tensor;

// Gate gradients the backward holds at a time: a chunk of rows that stays in
// the last-level cache while its weight-gradient products read it, and is
// long enough that those products run at full speed (at least 1024 rows).
constexpr int64_t kBackwardChunkBytes = int64_t{16} << 20;
int64_t backward_chunk_rows(int64_t hidden, int64_t elem_size) {
  return std::max<int64_t>(1024, kBackwardChunkBytes / (4 * hidden * elem_size));
}

int engine_threads() { return at::in_parallel_region() ? 1 : at::get_num_threads(); }

template <typename T>
Matrix<T> rows_of(const Tensor& t) {
  return {t.data_ptr<T>(), t.size(1)};
}

Tensor packed(size_t size, const at::TensorOptions& opts) {
  return at::empty({static_cast<int64_t>(size)}, opts);
}

std::optional<Tensor> contiguous(const std::optional<Tensor>& t) {
  return t ? std::optional(t->contiguous()) : std::nullopt;
}

struct LayerWeights {
  Tensor w_ih, w_hh, bias;   // bias: zeros without one
  std::optional<Tensor> w_hr;
};

struct ForwardBuffers {
  Tensor gates;   // [N, 4H]; in inference [chunk rows, 4H], or empty (gate_rows)
  Tensor cells;   // [N, H], or empty in inference
  Tensor output;  // [N, P]
  Tensor h_n, c_n;
  bool saved;     // gates and cells keep every step (for backward)
};

// h_n: each sequence's row of its last visited step.
template <typename T>
void gather_final_hidden(const StepSchedule& sched, bool reverse, const Tensor& output,
                         Tensor& h_n) {
  const int64_t P = output.size(1);
  const std::vector<int64_t> last = sched.last_rows(reverse);
  for (size_t b = 0; b < last.size(); ++b) {
    std::memcpy(h_n.data_ptr<T>() + b * P, output.data_ptr<T>() + last[b] * P, P * sizeof(T));
  }
}

// One step for all B rows in one pass of the engine (the products with the
// weights as they lie, then the cell), c_n updated in place.
template <typename T>
void forward_single_step(const Engine<T>& e, const LayerShape& s, const Tensor& input,
                         const Tensor& h0, const LayerWeights& w, ForwardBuffers& buf) {
  const int threads = engine_threads();
  const int64_t B = s.rows, H = s.hidden, P = s.proj;
  Tensor hidden = w.w_hr ? at::empty({B, H}, input.options()) : buf.output;
  e.cell_rows({B, H, s.input, P, rows_of<T>(input), rows_of<T>(h0), rows_of<T>(w.w_ih),
               rows_of<T>(w.w_hh), w.bias.data_ptr<T>(), buf.gates.data_ptr<T>(),
               buf.c_n.data_ptr<T>(), buf.c_n.data_ptr<T>(), hidden.data_ptr<T>()},
              threads);
  if (w.w_hr) {
    e.gemm_nt({B, P, H, rows_of<T>(hidden), rows_of<T>(*w.w_hr), buf.output.data_ptr<T>(), P,
               false},
              threads);
  }
  if (buf.saved) buf.cells.copy_(buf.c_n);
  buf.h_n.copy_(buf.output);
}

// x W_ihᵀ of rows [row0, row0 + rows) into gates. Sequences of many rows
// take the packed product (W_ih packed on the fly, the register tile at its
// best); short ones the dot products on W_ih as it lies. Chosen by the
// layer's rows, never the chunk's, so that inference (in chunks) and
// training (at once) give the same bits.
template <typename T>
void input_projection(const Engine<T>& e, const LayerShape& s, const Tensor& input,
                      const Tensor& w_ih, int64_t row0, int64_t rows, T* gates) {
  constexpr int64_t kPackedProjectionRows = 32;
  const Matrix<T> x{input.data_ptr<T>() + row0 * s.input, s.input};
  const int64_t G = 4 * s.hidden;
  if (s.rows >= kPackedProjectionRows) {
    e.gemm_nn({rows, G, s.input, x, false, rows_of<T>(w_ih), true, gates, G, false},
              engine_threads());
  } else {
    e.gemm_nt({rows, G, s.input, x, rows_of<T>(w_ih), gates, G, false}, engine_threads());
  }
}

template <typename T>
bool steps_project_input(const Engine<T>& e, const LayerShape& s) {
  const int64_t weight_bytes = 4 * s.hidden * (s.input + s.proj) * int64_t{sizeof(T)};
  return e.projects_input_in_steps(s.batch, weight_bytes);
}

template <typename T>
void forward_steps(const Engine<T>& e, const LayerShape& s, const StepSchedule& sched,
                   bool reverse, const Tensor& input, const Tensor& h0, const LayerWeights& w,
                   ForwardBuffers& buf) {
  const int threads = engine_threads();
  const int64_t H = s.hidden, P = s.proj, I = s.input;
  const auto opts = input.options();
  const int group = e.panels_per_group(s.batch);
  const bool in_steps = steps_project_input(e, s);
  Tensor gate_panels = packed(e.gate_panels_size(H, P, group), opts);
  e.pack_gate_panels(w.w_hh.data_ptr<T>(), H, P, group, gate_panels.data_ptr<T>(), threads);
  Tensor input_panels, proj_panels, hidden;
  if (in_steps) {
    input_panels = packed(e.gate_panels_size(H, I, group), opts);
    e.pack_gate_panels(w.w_ih.data_ptr<T>(), H, I, group, input_panels.data_ptr<T>(), threads);
  }
  if (w.w_hr) {
    proj_panels = packed(e.panels_size(H, P, group), opts);
    e.pack_panels(w.w_hr->data_ptr<T>(), H, H, P, true, group, proj_panels.data_ptr<T>(), threads);
    hidden = at::empty({s.batch, H}, opts);
  }
  auto data = [](const Tensor& t) { return t.defined() ? t.data_ptr<T>() : nullptr; };
  ForwardSteps<T> f{&sched, reverse, 0, sched.steps(), H, P, group, data(input_panels),
                    input.data_ptr<T>(), I, gate_panels.data_ptr<T>(), data(proj_panels),
                    w.bias.data_ptr<T>(), h0.data_ptr<T>(), data(buf.gates), 0, buf.saved,
                    buf.c_n.data_ptr<T>(), buf.saved ? buf.cells.data_ptr<T>() : nullptr,
                    buf.saved, data(hidden), buf.output.data_ptr<T>()};
  if (in_steps) {
    e.forward_steps(f, threads);
  } else {
    const int64_t chunk_rows =
        buf.saved ? std::numeric_limits<int64_t>::max() : kInferenceChunkRows;
    for (const StepChunk& chunk : step_chunks(sched, reverse, chunk_rows)) {
      f.gates_row0 = buf.saved ? 0 : chunk.row0;
      input_projection<T>(e, s, input, w.w_ih, chunk.row0, chunk.rows,
                          f.gates + (chunk.row0 - f.gates_row0) * 4 * H);
      f.k_begin = chunk.k_begin;
      f.k_end = chunk.k_end;
      e.forward_steps(f, threads);
    }
  }
  gather_final_hidden<T>(sched, reverse, buf.output, buf.h_n);
}

// The gate buffer of a forward: every row's gates when the backward needs
// them; in inference a chunk of rows of input projection, or none where the
// steps project their input themselves.
template <typename T>
int64_t gate_rows(const Engine<T>& e, const LayerShape& s, const StepSchedule& sched,
                  bool save_workspace) {
  if (save_workspace) return s.rows;
  if (sched.steps() > 1 && steps_project_input(e, s)) return 0;
  return std::min(s.rows, std::max(kInferenceChunkRows, s.batch));
}

LayerOutputs lstm_layer_cpu(
    const Tensor& input_, const Tensor& h0_, const Tensor& c0_, const Tensor& w_ih_,
    const Tensor& w_hh_, const std::optional<Tensor>& bias_, const std::optional<Tensor>& w_hr_,
    const std::optional<Tensor>& batch_sizes, bool reverse, bool save_workspace) {
  if (current_backend().emulated) {
    return emulated::lstm_layer(input_, h0_, c0_, w_ih_, w_hh_, bias_, w_hr_, batch_sizes,
                                reverse, save_workspace);
  }
  const LayerShape s = check_layer_args(input_, h0_, c0_, w_ih_, w_hh_, bias_, w_hr_, batch_sizes);
  if (is_widened(input_)) {
    return layer_in_float(lstm_layer_cpu, input_, h0_, c0_, w_ih_, w_hh_, bias_, w_hr_,
                          batch_sizes, reverse, save_workspace);
  }
  const StepSchedule sched = make_schedule(s, batch_sizes);
  const Tensor input = input_.contiguous(), h0 = h0_.contiguous();
  const auto opts = input.options();
  const LayerWeights w{w_ih_.contiguous(), w_hh_.contiguous(),
                       bias_ ? bias_->contiguous() : at::zeros({4 * s.hidden}, opts),
                       contiguous(w_hr_)};
  ForwardBuffers buf{Tensor(),
                     save_workspace ? empty_large({s.rows, s.hidden}, opts)
                                    : at::empty({0, s.hidden}, opts),
                     empty_large({s.rows, s.proj}, opts), at::empty({s.batch, s.proj}, opts),
                     c0_.contiguous().clone(), save_workspace};
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "fastlstm::lstm_layer (CPU)", [&] {
    const Engine<scalar_t>& e = cpu_engine<scalar_t>();
    buf.gates = empty_large({gate_rows(e, s, sched, save_workspace), 4 * s.hidden}, opts);
    if (s.rows == 0) {
      buf.h_n.copy_(h0);
    } else if (sched.steps() == 1) {
      forward_single_step<scalar_t>(e, s, input, h0, w, buf);
    } else {
      forward_steps<scalar_t>(e, s, sched, reverse, input, h0, w, buf);
    }
  });
  if (!save_workspace) buf.gates = at::empty({0, 4 * s.hidden}, opts);
  return {buf.output, buf.h_n, buf.c_n, buf.gates, buf.cells};
}

// grad_output as rows at a stride, without copying it where its rows are
// already contiguous (stride 0: the same row for every row, as the gradient
// of out.sum() arrives).
template <typename T>
struct OutputGrad {
  Tensor held;
  const T* data;
  int64_t ld;
};

template <typename T>
OutputGrad<T> output_grad_rows(const Tensor& g) {
  if (g.size(0) > 0 && (g.stride(1) == 1 || g.size(1) <= 1) &&
      (g.stride(0) == 0 || g.stride(0) >= g.size(1))) {
    return {g, g.data_ptr<T>(), g.stride(0)};
  }
  if (g.size(0) > 0 && g.stride(0) == 0) {
    Tensor row = g[0].contiguous();
    return {row, row.data_ptr<T>(), 0};
  }
  Tensor rows = g.contiguous();
  return {rows, rows.data_ptr<T>(), g.size(1)};
}

struct LayerGradBuffers {
  Tensor grad_input, dh_state, dc_state, grad_w_ih, grad_w_hh, grad_w_hr;
  std::vector<double> bias_sums;
};

// The rows of h_{t-1} for rows [row0, row0 + rows): at one stride where they
// are a block of the output (or of h0), else one pointer per row.
template <typename T>
struct PreviousRows {
  std::vector<const T*> pointers;
  Matrix<T> matrix;
};

template <typename T>
PreviousRows<T> previous_rows(const StepSchedule& sched, bool reverse, const StepChunk& chunk,
                              const Tensor& output, const Tensor& h0) {
  const int64_t P = output.size(1);
  const int64_t t_a = sched.step_at(chunk.k_begin, reverse);
  const int64_t t_b = sched.step_at(chunk.k_end - 1, reverse);
  PreviousRows<T> prev;
  prev.pointers.reserve(chunk.rows);
  for (int64_t t = std::min(t_a, t_b); t <= std::max(t_a, t_b); ++t) {
    for (int64_t b = 0; b < sched.batch[t]; ++b) {
      const int64_t src = sched.prev_row(t, b, reverse);
      prev.pointers.push_back(src >= 0 ? output.data_ptr<T>() + src * P : h0.data_ptr<T>() + b * P);
    }
  }
  bool strided = true;
  for (size_t i = 1; i < prev.pointers.size() && strided; ++i) {
    strided = prev.pointers[i] == prev.pointers[0] + static_cast<int64_t>(i) * P;
  }
  prev.matrix =
      strided ? Matrix<T>{prev.pointers[0], P} : Matrix<T>{nullptr, P, prev.pointers.data()};
  return prev;
}

// The whole-sequence products' share of one chunk of rows [row0, row0 + R):
// grad_input rows, and grad_w_ih, grad_w_hh, grad_bias (and grad_w_hr)
// added to (or, for the first chunk, written).
template <typename T>
void chunk_products(const Engine<T>& e, const LayerShape& s, const StepSchedule& sched,
                    bool reverse, const StepChunk& chunk, bool first, const Tensor& input,
                    const Tensor& h0, const LayerWeights& w, const Tensor& output,
                    const Tensor& gates, const Tensor& cells, const T* dgates,
                    const T* dh_total, LayerGradBuffers& g) {
  const int threads = engine_threads();
  const int64_t R = chunk.rows, row0 = chunk.row0, G = 4 * s.hidden, I = s.input, P = s.proj;
  const Matrix<T> dg{dgates, G};
  e.gemm_nn({R, I, G, dg, false, rows_of<T>(w.w_ih), false,
             g.grad_input.data_ptr<T>() + row0 * I, I, false},
            threads);
  e.gemm_nn({G, I, R, dg, true, {input.data_ptr<T>() + row0 * I, I}, false,
             g.grad_w_ih.data_ptr<T>(), I, !first},
            threads);
  const PreviousRows<T> prev = previous_rows<T>(sched, reverse, chunk, output, h0);
  e.gemm_nn({G, P, R, dg, true, prev.matrix, false, g.grad_w_hh.data_ptr<T>(), P, !first},
            threads);
  e.add_column_sums(R, G, dgates, G, g.bias_sums.data(), threads);
  if (w.w_hr) {
    const int64_t H = s.hidden;
    Tensor hidden = at::empty({R, H}, gates.options());
    e.hidden_rows(R, H, gates.data_ptr<T>() + row0 * G, cells.data_ptr<T>() + row0 * H,
                  hidden.data_ptr<T>());
    e.gemm_nn({P, H, R, {dh_total, P}, true, rows_of<T>(hidden), false,
               g.grad_w_hr.data_ptr<T>(), H, !first},
              threads);
  }
}

template <typename T>
void backward_single_step(const Engine<T>& e, const LayerShape& s, const StepSchedule& sched,
                          const Tensor& grad_output, const Tensor& input, const Tensor& h0,
                          const Tensor& c0, const LayerWeights& w, const Tensor& output,
                          const Tensor& gates, const Tensor& cells, LayerGradBuffers& g) {
  const int threads = engine_threads();
  const int64_t B = s.rows, H = s.hidden, P = s.proj;
  const auto opts = gates.options();
  // dL/dh_t: the output's gradient plus h_n's, through the projection if any.
  const Tensor dh_total = grad_output + g.dh_state;
  Tensor dh = dh_total;
  if (w.w_hr) {
    dh = at::empty({B, H}, opts);
    e.gemm_nn({B, H, P, rows_of<T>(dh_total), false, rows_of<T>(*w.w_hr), false,
               dh.data_ptr<T>(), H, false},
              threads);
  }
  Tensor dgates = at::empty({B, 4 * H}, opts);
  Tensor dc_prev = at::empty({B, H}, opts);
  e.cell_grad_rows({B, H, gates.data_ptr<T>(), cells.data_ptr<T>(), c0.data_ptr<T>(),
                    dh.data_ptr<T>(), g.dc_state.data_ptr<T>(), dgates.data_ptr<T>(),
                    dc_prev.data_ptr<T>()},
                   threads);
  g.dc_state = dc_prev;
  e.gemm_nn({B, P, 4 * H, rows_of<T>(dgates), false, rows_of<T>(w.w_hh), false,
             g.dh_state.data_ptr<T>(), P, false},
            threads);
  chunk_products<T>(e, s, sched, false, {0, 1, 0, B}, true, input, h0, w, output, gates, cells,
                    dgates.data_ptr<T>(), dh_total.data_ptr<T>(), g);
}

template <typename T>
void backward_steps(const Engine<T>& e, const LayerShape& s, const StepSchedule& sched,
                    bool reverse, const OutputGrad<T>& grad_output, const Tensor& input,
                    const Tensor& h0, const Tensor& c0, const LayerWeights& w,
                    const Tensor& output, const Tensor& gates, const Tensor& cells,
                    LayerGradBuffers& g) {
  const int threads = engine_threads();
  const int64_t H = s.hidden, P = s.proj;
  const auto opts = gates.options();
  const int group = e.panels_per_group(s.batch);
  Tensor hh_panels = packed(e.panels_size(4 * H, P, group), opts);
  e.pack_panels(w.w_hh.data_ptr<T>(), P, 4 * H, P, false, group, hh_panels.data_ptr<T>(),
                threads);
  Tensor hr_panels;
  if (w.w_hr) {
    hr_panels = packed(e.panels_size(P, H, group), opts);
    e.pack_panels(w.w_hr->data_ptr<T>(), H, P, H, false, group, hr_panels.data_ptr<T>(), threads);
  }
  const std::vector<StepChunk> chunks =
      step_chunks(sched, reverse, backward_chunk_rows(H, sizeof(T)));
  int64_t most_rows = 0;
  for (const StepChunk& c : chunks) most_rows = std::max(most_rows, c.rows);
  Tensor dgates = empty_large({most_rows, 4 * H}, opts);
  Tensor dh_total = w.w_hr ? at::empty({most_rows, P}, opts) : Tensor();
  BackwardSteps<T> d{&sched, reverse, 0, 0, H, P, group, hh_panels.data_ptr<T>(),
                     w.w_hr ? hr_panels.data_ptr<T>() : nullptr, gates.data_ptr<T>(),
                     cells.data_ptr<T>(), c0.data_ptr<T>(), grad_output.data, grad_output.ld,
                     g.dh_state.data_ptr<T>(), g.dc_state.data_ptr<T>(), dgates.data_ptr<T>(), 0,
                     w.w_hr ? dh_total.data_ptr<T>() : nullptr};
  for (auto chunk = chunks.rbegin(); chunk != chunks.rend(); ++chunk) {
    d.k_begin = chunk->k_begin;
    d.k_end = chunk->k_end;
    d.dgates_row0 = chunk->row0;
    e.backward_steps(d, threads);
    chunk_products<T>(e, s, sched, reverse, *chunk, chunk == chunks.rbegin(), input, h0, w,
                      output, gates, cells, d.dgates, d.dh_total, g);
  }
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
  const Tensor input = input_.contiguous(), h0 = h0_.contiguous(), c0 = c0_.contiguous();
  const Tensor output = output_.contiguous(), gates = gates_.contiguous();
  const Tensor cells = cells_.contiguous();
  const auto opts = input.options();
  const LayerWeights w{w_ih_.contiguous(), w_hh_.contiguous(), Tensor(), contiguous(w_hr_)};
  LayerGradBuffers g{empty_large(input.sizes(), opts), grad_h_n.contiguous().clone(),
                     grad_c_n.contiguous().clone(), empty_large(w.w_ih.sizes(), opts),
                     empty_large(w.w_hh.sizes(), opts),
                     w.w_hr ? empty_large(w.w_hr->sizes(), opts) : at::empty({0}, opts),
                     std::vector<double>(4 * s.hidden, 0.0)};
  if (s.rows == 0) {
    g.grad_w_ih.zero_();
    g.grad_w_hh.zero_();
    g.grad_w_hr.zero_();
  } else {
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "fastlstm::lstm_layer_backward (CPU)", [&] {
      const Engine<scalar_t>& e = cpu_engine<scalar_t>();
      if (sched.steps() == 1) {
        backward_single_step<scalar_t>(e, s, sched, grad_output_, input, h0, c0, w, output,
                                       gates, cells, g);
      } else {
        backward_steps<scalar_t>(e, s, sched, reverse, output_grad_rows<scalar_t>(grad_output_),
                                 input, h0, c0, w, output, gates, cells, g);
      }
    });
  }
  Tensor grad_bias = at::tensor(g.bias_sums, at::TensorOptions().dtype(at::kDouble))
                         .to(input.scalar_type());
  return {g.grad_input, g.dh_state, g.dc_state, g.grad_w_ih, g.grad_w_hh, grad_bias, g.grad_w_hr};
}

std::tuple<Tensor, Tensor> gate_activations_cpu(const Tensor& x_) {
  const Tensor x = x_.contiguous();
  Tensor sig = at::empty_like(x), tanh = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fastlstm::_gate_activations (CPU)", [&] {
    cpu_engine<scalar_t>().activations(x.numel(), x.data_ptr<scalar_t>(),
                                       sig.data_ptr<scalar_t>(), tanh.data_ptr<scalar_t>());
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
