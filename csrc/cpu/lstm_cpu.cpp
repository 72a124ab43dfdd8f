// CPU backend of lstm_layer and _gate_activations: the torch side (checks,
// buffers, threads) of the CPU engine (engine.h), which does the arithmetic;
// the backward is in lstm_cpu_backward.cpp.
//
// The steps run in one team (a persistent recurrence with W_hh packed per
// member), which also project their input where that pays
// (steps_project_input); elsewhere x W_ihᵀ of a chunk of steps comes first
// as one product. A single step (an LSTMCell) skips the packing: its
// products read the weights as they lie.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <cstring>
#include <limits>
#include <tuple>
#include <vector>

#include "../op_kernels.h"
#include "../widen.h"
#include "engine.h"
#include "large_buffers.h"
#include "lstm_cpu.h"

namespace fastlstm::cpu {
namespace {

using at::Tensor;

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
  if (P == 0) return;  // no units: no data, and memcpy must not see its null pointer
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
  // Nothing to compute; empty tensors may hold null pointers, which the
  // engine and memcpy must not see.
  if (B * H == 0) return;
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
  // Plain copies: copy_'s TensorIterator costs more than a small cell step's rows.
  if (buf.saved) std::memcpy(buf.cells.data_ptr<T>(), buf.c_n.data_ptr<T>(), B * H * sizeof(T));
  std::memcpy(buf.h_n.data_ptr<T>(), buf.output.data_ptr<T>(), B * P * sizeof(T));
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
    e.pack_panels(rows_of<T>(*w.w_hr), H, P, true, group, proj_panels.data_ptr<T>(), threads);
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

LayerOutputs lstm_layer_cpu(const LayerArgs& a) {
  if (is_widened(a.input)) return layer_in_float(lstm_layer_cpu, a);
  const LayerShape& s = a.shape;
  const Tensor input = a.input.contiguous(), h0 = a.h0.contiguous();
  const auto opts = input.options();
  const LayerWeights w{a.w_ih.contiguous(), a.w_hh.contiguous(),
                       a.bias ? a.bias->contiguous() : at::zeros({4 * s.hidden}, opts),
                       contiguous(a.w_hr)};
  ForwardBuffers buf{Tensor(),
                     a.save_workspace ? empty_large({s.rows, s.hidden}, opts)
                                      : at::empty({0, s.hidden}, opts),
                     empty_large({s.rows, s.proj}, opts), at::empty({s.batch, s.proj}, opts),
                     a.c0.contiguous().clone(), a.save_workspace};
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "fastlstm::lstm_layer (CPU)", [&] {
    const Engine<scalar_t>& e = cpu_engine<scalar_t>();
    buf.gates = empty_large({gate_rows(e, s, a.schedule, a.save_workspace), 4 * s.hidden}, opts);
    if (s.rows == 0) {
      buf.h_n.copy_(h0);
    } else if (a.schedule.steps() == 1) {
      forward_single_step<scalar_t>(e, s, input, h0, w, buf);
    } else {
      forward_steps<scalar_t>(e, s, a.schedule, a.reverse, input, h0, w, buf);
    }
  });
  if (!a.save_workspace) buf.gates = at::empty({0, 4 * s.hidden}, opts);
  return {buf.output, buf.h_n, buf.c_n, buf.gates, buf.cells};
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
  m.impl("lstm_layer", &layer_kernel<&lstm_layer_cpu>);
  m.impl("_gate_activations", &gate_activations_cpu);
}

}  // namespace fastlstm::cpu
