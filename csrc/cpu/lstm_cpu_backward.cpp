// CPU backend of lstm_layer_backward: the torch side of the CPU engine's
// backward (engine.h). The recurrence runs chunk by chunk from the last
// step, each chunk's gate gradients followed by their share of the
// whole-sequence products (grad_input, grad_w_ih, grad_w_hh, grad_bias), so
// that only a chunk of gate gradients (or a ring of a few) is held at a
// time: at once on the whole team, or, where W_hh fits one core's L2,
// overlapped (overlap.h) with the recurrence on one core. A single step (an
// LSTMCell) skips the packing: its products read the weights as they lie.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <algorithm>
#include <functional>
#include <vector>

#include "../op_kernels.h"
#include "../widen.h"
#include "engine.h"
#include "engine/team.h"
#include "large_buffers.h"
#include "lstm_cpu.h"
#include "overlap.h"

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

// The rows of the largest chunk: what a buffer for any one of them holds.
int64_t largest_chunk_rows(const std::vector<StepChunk>& chunks) {
  int64_t rows = 0;
  for (const StepChunk& c : chunks) rows = std::max(rows, c.rows);
  return rows;
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

// Whether the backward recurrence runs on one core while the others take
// the products of the chunks it has done (overlap.h): where W_hh fits in
// half of one core's L2, so that one core runs the steps about as fast as
// two, and without a projection. By shape and machine only: it also sets
// the chunks, hence the sums' order.
bool overlaps_backward(const LayerShape& s, bool projected, int64_t elem_size) {
  return !projected && 4 * s.hidden * s.proj * elem_size <= core_l2_bytes() / 2;
}

// The team that overlaps: with more than three threads the others' share of
// the products takes less time than the recurrence alone, which a team of
// all of them runs faster.
bool overlap_team(int threads) { return threads >= 2 && threads <= 3; }

// Rows per chunk where the backward overlaps: the products wait for the
// first chunk's recurrence alone, so about a sixteenth of the rows, but at
// least 64 so that the weight gradients' products still run at speed.
int64_t overlap_chunk_rows(int64_t rows, int64_t hidden, int64_t elem_size) {
  constexpr int64_t kChunks = 16, kMinRows = 64;
  return std::clamp(rows / kChunks, kMinRows, backward_chunk_rows(hidden, elem_size));
}

// The backward of overlaps_backward on a team of overlap_team: one member
// runs the chunks' recurrence in turn, each chunk's gate gradients into a
// ring of `slots` buffers with its input rows and h_{t-1} rows packed as
// panels beside them; the chunks' products are items (overlap.h) in blocks
// of rows, the weight gradients' blocks each summed in chunk order. Four
// buffers (at most the 16 MiB of backward_chunk_rows) run as fast as one per
// chunk (A/B at T256 B4/B16 H128, B16 H256, T2048 B8 H256, T100 B32 H256:
// within 2% from two buffers to sixteen): where the recurrence waits for a
// buffer, its member takes the products that hold it.
template <typename T>
void overlapped_backward(const Engine<T>& e, const LayerShape& s, const StepSchedule& sched,
                         bool reverse, const std::vector<StepChunk>& chunks, BackwardSteps<T> d,
                         const Tensor& input, const Tensor& h0, const LayerWeights& w,
                         const Tensor& output, LayerGradBuffers& g, int threads) {
  constexpr int64_t kWeightBlockRows = 192, kInputBlockRows = 96, kSumBlockCols = 256;
  constexpr int64_t kRingSlots = 4;
  const int64_t H = s.hidden, G = 4 * H, I = s.input, P = s.proj;
  const int64_t stages = static_cast<int64_t>(chunks.size());
  const int64_t most_rows = largest_chunk_rows(chunks);
  const int64_t slots = std::clamp<int64_t>(
      std::min(kRingSlots, backward_chunk_rows(H, sizeof(T)) / most_rows), 2, stages);
  const auto opts = input.options();
  const int64_t x_size = e.panels_size(most_rows, I, 1), h_size = e.panels_size(most_rows, P, 1);
  Tensor ring = empty_large({slots * most_rows * G}, opts);
  Tensor x_ring = packed(slots * x_size, opts), h_ring = packed(slots * h_size, opts);
  Tensor w_ih_panels = packed(e.panels_size(G, I, 1), opts);
  e.pack_panels(rows_of<T>(w.w_ih), G, I, false, 1, w_ih_panels.data_ptr<T>(), threads);
  auto chunk_of = [&](int64_t stage) -> const StepChunk& { return chunks[stages - 1 - stage]; };
  std::vector<PreviousRows<T>> prev;
  prev.reserve(stages);
  for (int64_t j = 0; j < stages; ++j) {
    prev.push_back(previous_rows<T>(sched, reverse, chunk_of(j), output, h0));
  }
  T* dgates_ring = ring.data_ptr<T>();
  T* x_panels = x_ring.data_ptr<T>();
  T* h_panels = h_ring.data_ptr<T>();
  auto recurrence = [&](int64_t j) {
    const StepChunk& c = chunk_of(j);
    const int64_t slot = j % slots;
    d.k_begin = c.k_begin;
    d.k_end = c.k_end;
    d.dgates = dgates_ring + slot * most_rows * G;
    d.dgates_row0 = c.row0;
    e.backward_steps(d, 1);
    e.pack_panels({input.data_ptr<T>() + c.row0 * I, I}, c.rows, I, false, 1,
                  x_panels + slot * x_size, 1);
    e.pack_panels(prev[j].matrix, c.rows, P, false, 1, h_panels + slot * h_size, 1);
  };
  std::vector<StageItem> items;
  std::vector<int64_t> last_of_block;  // per accumulated block: its latest item
  for (int64_t j = 0; j < stages; ++j) {
    const StepChunk& c = chunk_of(j);
    const int64_t slot = j % slots, R = c.rows;
    const T* dg = dgates_ring + slot * most_rows * G;
    const bool add = j > 0;
    size_t block = 0;
    auto accumulated = [&](std::function<void()> run) {
      if (last_of_block.size() <= block) last_of_block.push_back(-1);
      items.push_back({j, last_of_block[block], std::move(run)});
      last_of_block[block++] = static_cast<int64_t>(items.size()) - 1;
    };
    for (int64_t i0 = 0; i0 < G; i0 += kWeightBlockRows) {
      const int64_t m = std::min(kWeightBlockRows, G - i0);
      const T* xp = x_panels + slot * x_size;
      const T* hp = h_panels + slot * h_size;
      accumulated([&e, m, I, R, G, dg, i0, xp, add, out = g.grad_w_ih.data_ptr<T>() + i0 * I] {
        e.gemm_nn({m, I, R, {dg + i0, G}, true, {}, false, out, I, add, xp}, 1);
      });
      accumulated([&e, m, P, R, G, dg, i0, hp, add, out = g.grad_w_hh.data_ptr<T>() + i0 * P] {
        e.gemm_nn({m, P, R, {dg + i0, G}, true, {}, false, out, P, add, hp}, 1);
      });
    }
    for (int64_t j0 = 0; j0 < G; j0 += kSumBlockCols) {
      const int64_t cols = std::min(kSumBlockCols, G - j0);
      accumulated([&e, R, cols, G, dg, j0, sums = g.bias_sums.data() + j0] {
        e.add_column_sums(R, cols, dg + j0, G, sums, 1);
      });
    }
    for (int64_t r0 = 0; r0 < R; r0 += kInputBlockRows) {
      const int64_t m = std::min(kInputBlockRows, R - r0);
      items.push_back({j, -1, [&e, m, I, G, dg, r0, wp = w_ih_panels.data_ptr<T>(),
                               out = g.grad_input.data_ptr<T>() + (c.row0 + r0) * I] {
                         e.gemm_nn({m, I, G, {dg + r0 * G, G}, false, {}, false, out, I, false, wp},
                                   1);
                       }});
    }
  }
  run_overlapped(threads, stages, slots, recurrence, items);
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
  const bool overlap = overlaps_backward(s, w.w_hr.has_value(), sizeof(T));
  const int group = e.panels_per_group(s.batch);
  Tensor hh_panels = packed(e.panels_size(4 * H, P, group), opts);
  e.pack_panels(rows_of<T>(w.w_hh), 4 * H, P, false, group, hh_panels.data_ptr<T>(),
                threads);
  Tensor hr_panels;
  if (w.w_hr) {
    hr_panels = packed(e.panels_size(P, H, group), opts);
    e.pack_panels(rows_of<T>(*w.w_hr), P, H, false, group, hr_panels.data_ptr<T>(), threads);
  }
  const std::vector<StepChunk> chunks = step_chunks(
      sched, reverse,
      overlap ? overlap_chunk_rows(s.rows, H, sizeof(T)) : backward_chunk_rows(H, sizeof(T)));
  BackwardSteps<T> d{&sched, reverse, 0, 0, H, P, group, hh_panels.data_ptr<T>(),
                     w.w_hr ? hr_panels.data_ptr<T>() : nullptr, gates.data_ptr<T>(),
                     cells.data_ptr<T>(), c0.data_ptr<T>(), grad_output.data, grad_output.ld,
                     g.dh_state.data_ptr<T>(), g.dc_state.data_ptr<T>(), nullptr, 0, nullptr};
  if (overlap && overlap_team(threads)) {
    overlapped_backward<T>(e, s, sched, reverse, chunks, d, input, h0, w, output, g, threads);
    return;
  }
  const int64_t most_rows = largest_chunk_rows(chunks);
  Tensor dgates = empty_large({most_rows, 4 * H}, opts);
  Tensor dh_total = w.w_hr ? at::empty({most_rows, P}, opts) : Tensor();
  d.dgates = dgates.data_ptr<T>();
  d.dh_total = w.w_hr ? dh_total.data_ptr<T>() : nullptr;
  for (auto chunk = chunks.rbegin(); chunk != chunks.rend(); ++chunk) {
    d.k_begin = chunk->k_begin;
    d.k_end = chunk->k_end;
    d.dgates_row0 = chunk->row0;
    e.backward_steps(d, threads);
    chunk_products<T>(e, s, sched, reverse, *chunk, chunk == chunks.rbegin(), input, h0, w,
                      output, gates, cells, d.dgates, d.dh_total, g);
  }
}

// The bias gradient, from its sums in double, in the layer's dtype.
Tensor bias_grad(const std::vector<double>& sums, const at::TensorOptions& opts) {
  Tensor grad = at::empty({static_cast<int64_t>(sums.size())}, opts);
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "fastlstm::bias_grad", [&] {
    scalar_t* out = grad.data_ptr<scalar_t>();
    for (size_t j = 0; j < sums.size(); ++j) out[j] = static_cast<scalar_t>(sums[j]);
  });
  return grad;
}

LayerGrads lstm_layer_backward_cpu(const BackwardArgs& b) {
  if (is_widened(b.layer.input)) return layer_backward_in_float(lstm_layer_backward_cpu, b);
  const LayerArgs& a = b.layer;
  const LayerShape& s = a.shape;
  const StepSchedule& sched = a.schedule;
  const Tensor input = a.input.contiguous(), h0 = a.h0.contiguous(), c0 = a.c0.contiguous();
  const Tensor output = b.output.contiguous(), gates = b.gates.contiguous();
  const Tensor cells = b.cells.contiguous();
  const auto opts = input.options();
  const LayerWeights w{a.w_ih.contiguous(), a.w_hh.contiguous(), Tensor(), contiguous(a.w_hr)};
  LayerGradBuffers g{empty_large(input.sizes(), opts), b.grad_h_n.contiguous().clone(),
                     b.grad_c_n.contiguous().clone(), empty_large(w.w_ih.sizes(), opts),
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
        backward_single_step<scalar_t>(e, s, sched, b.grad_output, input, h0, c0, w, output,
                                       gates, cells, g);
      } else {
        backward_steps<scalar_t>(e, s, sched, a.reverse, output_grad_rows<scalar_t>(b.grad_output),
                                 input, h0, c0, w, output, gates, cells, g);
      }
    });
  }
  Tensor grad_bias = bias_grad(g.bias_sums, opts);
  return {g.grad_input, g.dh_state, g.dc_state, g.grad_w_ih, g.grad_w_hh, grad_bias, g.grad_w_hr};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastlstm, CPU, m) {
  m.impl("lstm_layer_backward", &backward_kernel<&lstm_layer_backward_cpu>);
}

}  // namespace fastlstm::cpu
