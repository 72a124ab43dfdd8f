// Drives the kernels over a layer: the input projection of all steps (or of
// a chunk, in inference) is one ATen GEMM, then either one forward-step
// launch per step or one persistent launch for all of them; the backward
// runs one backward-step launch per step or one persistent launch, and takes
// grad_input and the weight gradients as whole-sequence ATen GEMMs and a
// column sum afterwards (no atomics anywhere, so results are deterministic).
// Device-agnostic: CUDA tensors with the CUDA kernels, CPU tensors with the
// emulated ones.
#include "lstm_kernel_glue.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include <limits>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "../kernels/storage_types.h"
#include "../widen.h"
#include "persistent_plan.h"

namespace fastlstm {
namespace {

using at::Tensor;

// The kernels' storage type of a torch dtype: the same bits, torch-free.
template <typename scalar_t>
struct KernelStorage {
  using type = scalar_t;
};
template <>
struct KernelStorage<c10::Half> {
  using type = half_t;
};
template <>
struct KernelStorage<c10::BFloat16> {
  using type = bfloat16_t;
};

template <typename K>
K* data(const Tensor& t) {
  TORCH_INTERNAL_ASSERT(t.element_size() == sizeof(K));
  return static_cast<K*>(t.data_ptr());
}

template <typename K>
K* data_or_null(const Tensor& t, bool present) {
  return present ? data<K>(t) : nullptr;
}

std::optional<Tensor> contiguous(const std::optional<Tensor>& t) {
  return t ? std::optional(t->contiguous()) : std::nullopt;
}

// Half and bfloat16 run their products on Tensor Cores where the WMMA tiles
// fit: H and P multiples of 16, W_hh 32-byte aligned.
template <typename T>
const char* tensor_cores_refused(const LayerShape& s, const Tensor& w_hh) {
  if (!std::is_same_v<T, half_t> && !std::is_same_v<T, bfloat16_t>) {
    return "Tensor Core kernels take half or bfloat16 storage";
  }
  if (!TensorCoreTile::fits(static_cast<int>(s.hidden), static_cast<int>(s.proj))) {
    return "Tensor Core kernels need hidden_size and proj_size multiples of 16";
  }
  if (reinterpret_cast<uintptr_t>(w_hh.data_ptr()) % 32 != 0) {
    return "Tensor Core kernels need W_hh 32-byte aligned";
  }
  return nullptr;
}

// The forced variant; else Tensor Cores where they apply, else narrow tiles
// unless those would fill every SM twice.
template <typename T>
StepVariant pick_variant(const StepKernels& kernels, const LayerArgs& a, int64_t narrow_blocks) {
  const LayerShape& s = a.shape;
  const char* refused = tensor_cores_refused<T>(s, a.w_hh);
  switch (a.kernel) {
    case KernelChoice::kTensorCore:
      TORCH_CHECK(!refused, "fastlstm: kernel='tensor_core' cannot run this layer (hidden ",
                  s.hidden, ", proj ", s.proj, "): ", refused);
      return StepVariant::kTensorCore;
    case KernelChoice::kStepWide: return StepVariant::kWide;
    case KernelChoice::kStepNarrow: return StepVariant::kNarrow;
    default: break;
  }
  if (!refused) return StepVariant::kTensorCore;
  return narrow_blocks >= 2 * kernels.multiprocessors() ? StepVariant::kWide
                                                        : StepVariant::kNarrow;
}

KernelChoice variant_choice(StepVariant v) {
  switch (v) {
    case StepVariant::kWide: return KernelChoice::kStepWide;
    case StepVariant::kTensorCore: return KernelChoice::kTensorCore;
    default: return KernelChoice::kStepNarrow;
  }
}

// The 2-D kernels' step counters, one per batch slice, zeroed for a launch;
// none for the 1-D kernels.
Tensor slice_step_counters(const PersistentPlan& plan, int64_t batch, const at::TensorOptions& on) {
  if (plan.slice_rows == 0) return Tensor();
  return at::zeros({ceil_div(static_cast<int>(batch), plan.slice_rows)}, on.dtype(at::kInt));
}

// A host vector on the device. From pageable memory a copy to a GPU waits for
// the stream to drain, stalling the host at every launch; from pinned memory
// it is queued like a kernel.
template <typename V>
Tensor on_device(const std::vector<V>& values, at::ScalarType dtype, const at::Device& device) {
  Tensor host = at::tensor(values, dtype);
  if (device.is_cuda()) host = host.pin_memory();
  return host.to(device, /*non_blocking=*/true);
}

// batch_t and offset_t of every step as int32 [2, T] on the device; none
// (undefined) when every step is full.
Tensor device_schedule(const StepSchedule& sched, const at::Device& device) {
  if (sched.full()) return Tensor();
  std::vector<int32_t> values(sched.batch.begin(), sched.batch.end());
  values.insert(values.end(), sched.offset.begin(), sched.offset.end());
  return on_device(values, at::kInt, device).view({2, sched.steps()});
}

DeviceSchedule schedule_view(const Tensor& device_sched, const StepSchedule& sched,
                             bool reverse) {
  const int steps = static_cast<int>(sched.steps());
  const int full_rows = steps > 0 ? static_cast<int>(sched.batch.front()) : 0;
  if (!device_sched.defined()) return {nullptr, nullptr, full_rows, steps, reverse};
  const int32_t* values = device_sched.data_ptr<int32_t>();
  return {values, values + steps, full_rows, steps, reverse};
}

struct ForwardTensors {
  Tensor input, w_ih, w_hh, h0;
  std::optional<Tensor> bias, w_hr;
  Tensor projection;  // [N, 4H] (or a chunk's rows): x W_ihᵀ + b, in the storage dtype
  Tensor gates;       // [N, 4H] when saving: the activated gates (may be `projection`)
  Tensor cells;       // [N, H] when saving
  Tensor output;      // [N, P]
  Tensor c_state;     // [B, H], accumulation dtype: c0 in, c_n out
};

// x W_ihᵀ + b of a chunk's rows, into the projection buffer (at the chunk's
// rows when saving, at its start otherwise).
Tensor project_chunk(const StepChunk& chunk, bool save, ForwardTensors& f) {
  Tensor pre = f.projection.narrow(0, save ? chunk.row0 : 0, chunk.rows);
  const Tensor x = f.input.narrow(0, chunk.row0, chunk.rows);
  if (f.bias) {
    at::addmm_out(pre, *f.bias, x, f.w_ih.t());
  } else {
    at::mm_out(pre, x, f.w_ih.t());
  }
  return pre;
}

int64_t chunk_rows_for(bool save) {
  return save ? std::numeric_limits<int64_t>::max() : kInferenceChunkRows;
}

template <typename T>
void forward_persistent(const StepKernels& kernels, const LayerArgs& a,
                        const PersistentPlan& plan, ForwardTensors& f) {
  const LayerShape& s = a.shape;
  const StepSchedule& sched = a.schedule;
  const bool reverse = a.reverse, save = a.save_workspace;
  const Tensor device_sched = device_schedule(sched, f.output.device());
  Tensor step_counters;
  for (const StepChunk& chunk : step_chunks(sched, reverse, chunk_rows_for(save))) {
    Tensor pre = project_chunk(chunk, save, f);
    PersistentForwardParams<T> p{};
    p.pre_x = data<T>(pre);
    p.h0 = data<T>(f.h0);
    p.w_hh = data<T>(f.w_hh);
    p.c_state = data<acc_t<T>>(f.c_state);
    p.output = data<T>(f.output);
    p.gates = data_or_null<acc_t<T>>(f.gates, save);
    p.cells = data_or_null<acc_t<T>>(f.cells, save);
    p.sched = schedule_view(device_sched, sched, reverse);
    p.k_begin = static_cast<int>(chunk.k_begin);
    p.k_end = static_cast<int>(chunk.k_end);
    p.row0 = static_cast<int>(chunk.row0);
    p.batch = static_cast<int>(s.batch);
    p.hidden = static_cast<int>(s.hidden);
    p.units = plan.units;
    p.tensor_cores = plan.tensor_cores;
    p.slice_rows = plan.slice_rows;
    step_counters = slice_step_counters(plan, s.batch, f.output.options());
    p.step_counters = data_or_null<int>(step_counters, step_counters.defined());
    kernels.forward_persistent(p, save);
  }
}

template <typename T>
void forward_steps(const StepKernels& kernels, const LayerArgs& a, ForwardTensors& f) {
  const LayerShape& s = a.shape;
  const StepSchedule& sched = a.schedule;
  const bool reverse = a.reverse, save = a.save_workspace;
  const PersistentPlan persistent = choose_persistent<T>(kernels, a, false);
  if (persistent.units > 0) {
    record_kernel(persistent.tensor_cores   ? KernelChoice::kPersistentTensorCore
                  : persistent.slice_rows > 0 ? KernelChoice::kPersistent2d
                                              : KernelChoice::kPersistent);
    forward_persistent<T>(kernels, a, persistent, f);
    return;
  }
  const int64_t H = s.hidden, P = s.proj;
  const StepVariant variant = pick_variant<T>(
      kernels, a, ForwardTile::blocks_x(H) * ForwardTile::blocks_y(s.batch, StepVariant::kNarrow));
  record_kernel(variant_choice(variant));
  // With a projection, o * tanh(c) lands here before the [H -> P] GEMM.
  Tensor hidden = f.w_hr ? at::empty({s.batch, H}, f.output.options()) : Tensor();
  for (const StepChunk& chunk : step_chunks(sched, reverse, chunk_rows_for(save))) {
    Tensor pre = project_chunk(chunk, save, f);
    for (int64_t k = chunk.k_begin; k < chunk.k_end; ++k) {
      const int64_t t = sched.step_at(k, reverse), prev = sched.prev_step(t, reverse);
      const int64_t rows = sched.batch[t], off = sched.offset[t];
      T* pre_x = data<T>(pre) + (off - chunk.row0) * 4 * H;
      ForwardStepParams<T> p{};
      p.pre_x = pre_x;
      p.h_prev = prev >= 0 ? data<T>(f.output) + sched.offset[prev] * P : nullptr;
      p.h0 = data<T>(f.h0);
      p.w_hh = data<T>(f.w_hh);
      p.c_state = data<acc_t<T>>(f.c_state);
      p.h_out = f.w_hr ? data<T>(hidden) : data<T>(f.output) + off * P;
      p.gates = save ? data<acc_t<T>>(f.gates) + off * 4 * H : nullptr;
      p.cells = save ? data<acc_t<T>>(f.cells) + off * H : nullptr;
      p.rows = static_cast<int>(rows);
      p.carried = static_cast<int>(sched.carried_rows(t, reverse));
      p.hidden = static_cast<int>(H);
      p.proj = static_cast<int>(P);
      kernels.forward(p, variant, save);
      if (f.w_hr) {
        Tensor out_rows = f.output.narrow(0, off, rows);
        at::mm_out(out_rows, hidden.narrow(0, 0, rows), f.w_hr->t());
      }
    }
  }
}

struct BackwardTensors {
  Tensor grad_output, c0, w_hh, gates, cells;
  std::optional<Tensor> w_hr;
  Tensor dgates;             // [N, 4H], storage dtype
  // Accumulation dtype from here on.
  Tensor dh[2], dc[2];       // [B, P], [B, H]: read one, write the other, per step
  Tensor grad_h0, grad_c0;   // [B, P], [B, H]
  Tensor dh_total;           // [N, P]: dL/dh_t of every row, with a projection
};

template <typename T>
void backward_persistent(const StepKernels& kernels, const LayerArgs& a,
                         const PersistentPlan& plan, BackwardTensors& b) {
  const LayerShape& s = a.shape;
  const Tensor device_sched = device_schedule(a.schedule, b.gates.device());
  PersistentBackwardParams<T> p{};
  p.gates = data<acc_t<T>>(b.gates);
  p.cells = data<acc_t<T>>(b.cells);
  p.c0 = data<T>(b.c0);
  p.grad_output = data<T>(b.grad_output);
  p.grad_h_n = data<acc_t<T>>(b.dh[0]);
  p.grad_c_n = data<acc_t<T>>(b.dc[0]);
  p.w_hh = data<T>(b.w_hh);
  p.dgates = data<T>(b.dgates);
  p.grad_h0 = data<acc_t<T>>(b.grad_h0);
  p.grad_c0 = data<acc_t<T>>(b.grad_c0);
  p.sched = schedule_view(device_sched, a.schedule, a.reverse);
  p.batch = static_cast<int>(s.batch);
  p.hidden = static_cast<int>(s.hidden);
  p.units = plan.units;
  p.tensor_cores = plan.tensor_cores;
  p.slice_rows = plan.slice_rows;
  const Tensor step_counters = slice_step_counters(plan, s.batch, b.gates.options());
  p.step_counters = data_or_null<int>(step_counters, step_counters.defined());
  kernels.backward_persistent(p);
}

template <typename T>
void backward_steps(const StepKernels& kernels, const LayerArgs& a, BackwardTensors& b) {
  const LayerShape& s = a.shape;
  const StepSchedule& sched = a.schedule;
  const bool reverse = a.reverse;
  const PersistentPlan persistent = choose_persistent<T>(kernels, a, true);
  if (persistent.units > 0) {
    backward_persistent<T>(kernels, a, persistent, b);
    return;
  }
  const int64_t H = s.hidden, P = s.proj;
  const StepVariant variant = pick_variant<T>(
      kernels, a, BackwardTile::blocks_x(P) * BackwardTile::blocks_y(s.batch, StepVariant::kNarrow));
  // With a projection, dL/d(o * tanh c) comes from a GEMM through W_hr,
  // taken in the accumulation type and handed to the kernel in the storage
  // type (one buffer when they are the same).
  const Tensor w_hr_acc = b.w_hr ? b.w_hr->to(b.dh_total.scalar_type()) : Tensor();
  Tensor dhidden_acc = b.w_hr ? at::empty({s.batch, H}, b.dh_total.options()) : Tensor();
  Tensor dhidden = b.w_hr && b.grad_output.scalar_type() != b.dh_total.scalar_type()
                       ? at::empty({s.batch, H}, b.grad_output.options())
                       : dhidden_acc;
  int read = 0;
  for (int64_t k = sched.steps() - 1; k >= 0; --k, read = 1 - read) {
    const int64_t t = sched.step_at(k, reverse), prev = sched.prev_step(t, reverse);
    const int64_t rows = sched.batch[t], off = sched.offset[t];
    const int64_t carried = sched.carried_rows(t, reverse);
    BackwardStepParams<T> p{};
    p.gates = data<acc_t<T>>(b.gates) + off * 4 * H;
    p.cells = data<acc_t<T>>(b.cells) + off * H;
    p.c_prev = prev >= 0 ? data<acc_t<T>>(b.cells) + sched.offset[prev] * H : nullptr;
    p.c0 = data<T>(b.c0);
    if (b.w_hr) {
      Tensor dh_t = b.dh_total.narrow(0, off, rows);
      at::add_out(dh_t, b.grad_output.narrow(0, off, rows), b.dh[read].narrow(0, 0, rows));
      Tensor dhidden_rows = dhidden_acc.narrow(0, 0, rows);
      at::mm_out(dhidden_rows, dh_t, w_hr_acc);
      if (!dhidden.is_same(dhidden_acc)) dhidden.narrow(0, 0, rows).copy_(dhidden_rows);
      p.dh_out = data<T>(dhidden);
      p.dh_rec = nullptr;
    } else {
      p.dh_out = data<T>(b.grad_output) + off * P;
      p.dh_rec = data<acc_t<T>>(b.dh[read]);
    }
    p.dc_next = data<acc_t<T>>(b.dc[read]);
    p.w_hh = data<T>(b.w_hh);
    p.dgates = data<T>(b.dgates) + off * 4 * H;
    p.dc_prev = data<acc_t<T>>(b.dc[1 - read]);
    p.dh_prev = data<acc_t<T>>(b.dh[1 - read]);
    p.rows = static_cast<int>(rows);
    p.carried = static_cast<int>(carried);
    p.hidden = static_cast<int>(H);
    p.proj = static_cast<int>(P);
    kernels.backward(p, variant);
    if (carried < rows) {  // these rows started from h0/c0 at this step
      b.grad_h0.narrow(0, carried, rows - carried)
          .copy_(b.dh[1 - read].narrow(0, carried, rows - carried));
      b.grad_c0.narrow(0, carried, rows - carried)
          .copy_(b.dc[1 - read].narrow(0, carried, rows - carried));
    }
  }
}

// Rows of [output; h0]: row r < N of the output, or N + b for h0's row b.
Tensor output_or_h0_rows(const Tensor& output, const Tensor& h0, const std::vector<int64_t>& rows) {
  return at::cat({output, h0}).index_select(0, on_device(rows, at::kLong, output.device()));
}

// h_{t-1} of every row: the right operand of grad_w_hh.
Tensor previous_hidden(const StepSchedule& sched, bool reverse, const Tensor& output,
                       const Tensor& h0) {
  const int64_t n = output.size(0);
  std::vector<int64_t> rows(n);
  for (int64_t t = 0; t < sched.steps(); ++t) {
    for (int64_t b = 0; b < sched.batch[t]; ++b) {
      const int64_t prev = sched.prev_row(t, b, reverse);
      rows[sched.offset[t] + b] = prev >= 0 ? prev : n + b;
    }
  }
  return output_or_h0_rows(output, h0, rows);
}

// dL/dW_hh = sum over rows of dgates_rowᵀ h_{t-1}(row). With every step full,
// the rows that continue from the previous step read a contiguous block of
// the output: two GEMMs and no gathered copy of h_{t-1}.
Tensor grad_w_hh(const Tensor& dgates, const StepSchedule& sched, bool reverse,
                 const Tensor& output, const Tensor& h0) {
  if (!sched.full() || sched.steps() == 0) {
    return at::mm(dgates.t(), previous_hidden(sched, reverse, output, h0));
  }
  const int64_t batch = sched.batch.front();
  const FullStepRows r = full_step_rows(output.size(0), batch, reverse);
  Tensor grad = at::mm(dgates.narrow(0, r.from_h0, batch).t(), h0);
  if (r.carried > 0) {
    grad.addmm_(dgates.narrow(0, r.continuing, r.carried).t(),
                output.narrow(0, r.source, r.carried));
  }
  return grad;
}

// h_n: each sequence's last output row, or h0 for a sequence with no step.
// With every step full (an LSTMCell's one step among them) those rows are the
// last visited step's: a copy on the device, with no index sent from the host.
Tensor final_hidden(const StepSchedule& sched, bool reverse, const Tensor& output,
                    const Tensor& h0) {
  if (sched.full() && sched.steps() > 0 && sched.batch.front() == h0.size(0)) {
    const int64_t last = sched.step_at(sched.steps() - 1, reverse);
    return output.narrow(0, sched.offset[last], sched.batch[last]).clone();
  }
  std::vector<int64_t> rows = sched.last_rows(reverse);
  const int64_t n = output.size(0), visited = static_cast<int64_t>(rows.size());
  rows.resize(h0.size(0));
  for (int64_t b = visited; b < h0.size(0); ++b) rows[b] = n + b;
  return output_or_h0_rows(output, h0, rows);
}

}  // namespace

LayerOutputs lstm_layer_with_kernels(const StepKernels& kernels, const LayerArgs& a) {
  const LayerShape& s = a.shape;
  const bool save = a.save_workspace;
  const auto opts = a.input.options();
  const auto acc_opts = opts.dtype(compute_dtype(a.input.scalar_type()));
  const int64_t H = s.hidden;
  const int64_t projected_rows =
      save ? s.rows : std::min(s.rows, std::max(kInferenceChunkRows, s.batch));
  ForwardTensors f{a.input.contiguous(), a.w_ih.contiguous(), a.w_hh.contiguous(),
                   a.h0.contiguous(), contiguous(a.bias), contiguous(a.w_hr),
                   at::empty({projected_rows, 4 * H}, opts),
                   at::empty({save ? s.rows : 0, 4 * H}, acc_opts),
                   at::empty({save ? s.rows : 0, H}, acc_opts),
                   at::empty({s.rows, s.proj}, opts),
                   a.c0.to(acc_opts.dtype(), false, true).contiguous()};
  // Storage of the accumulation type keeps the projection in the workspace.
  if (save && !is_widened(a.input)) f.gates = f.projection;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, a.input.scalar_type(),
                                  "fastlstm::lstm_layer (CUDA kernels)", [&] {
    forward_steps<typename KernelStorage<scalar_t>::type>(kernels, a, f);
  });
  const Tensor h_n = final_hidden(a.schedule, a.reverse, f.output, f.h0);
  return {f.output, h_n, f.c_state.to(a.input.scalar_type()), f.gates, f.cells};
}

LayerGrads lstm_layer_backward_with_kernels(const StepKernels& kernels, const BackwardArgs& g) {
  const LayerArgs& a = g.layer;
  const LayerShape& s = a.shape;
  const at::ScalarType storage = a.input.scalar_type(), acc = compute_dtype(storage);
  const Tensor dh_n = g.grad_h_n.to(acc), dc_n = g.grad_c_n.to(acc);
  BackwardTensors b{g.grad_output.contiguous(), a.c0.contiguous(), a.w_hh.contiguous(),
                    g.gates.contiguous(), g.cells.contiguous(), contiguous(a.w_hr),
                    at::empty(g.gates.sizes(), a.input.options()),
                    {dh_n.clone(), dh_n.clone()}, {dc_n.clone(), dc_n.clone()},
                    at::empty_like(dh_n), at::empty_like(dc_n),
                    a.w_hr ? at::empty(g.output.sizes(), dh_n.options()) : Tensor()};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, storage,
                                  "fastlstm::lstm_layer_backward (CUDA kernels)", [&] {
    backward_steps<typename KernelStorage<scalar_t>::type>(kernels, a, b);
  });
  const Tensor x = a.input.contiguous();

  Tensor grad_w_hr = at::empty({0}, a.input.options());
  if (a.w_hr) {
    // hidden_from(o, c) of gate_math.h, on whole tensors.
    const Tensor hidden = b.gates.narrow(1, 3 * s.hidden, s.hidden) * at::tanh(b.cells);
    grad_w_hr = at::mm(b.dh_total.t(), hidden).to(storage);
  }
  return {at::mm(b.dgates, a.w_ih.contiguous()), b.grad_h0.to(storage), b.grad_c0.to(storage),
          at::mm(b.dgates.t(), x),
          grad_w_hh(b.dgates, a.schedule, a.reverse, g.output.contiguous(), a.h0.contiguous()),
          b.dgates.sum(0), grad_w_hr};
}

}  // namespace fastlstm
