// The backward pass of a layer direction in one cooperative launch,
// t = T-1 ... 0. Block k owns `units` hidden units and the same columns of
// dL/dh (P = H), and keeps W_hh's columns of those units (a slice of W_hhᵀ)
// in shared memory for the whole sequence, with dL/dh and dL/dc of its units.
// Per step:
//   A. gate gradients of its units (cell_backward from the shared header)
//      into dgates, and dL/dc_{t-1};
//   grid sync: the step's dgates rows are complete;
//   B. dL/dh_{t-1} of its columns = dgates_t W_hh[:, columns], reading every
//      block's dgates of the step through L2.
// Step t-1's phase A needs only the block's own dL/dh and dL/dc, and writes
// other dgates rows than the ones B reads, so one grid sync per step
// suffices. Each sum runs in a fixed order: no atomics, deterministic.
#pragma once

#include "kernel_prelude.cuh"

#include "../gate_math.h"
#include "convert.cuh"
#include "lstm_step_backward.cuh"
#include "persistent_schedule.cuh"
#include "persistent_split.cuh"
#include "step_params.h"

namespace fastlstm {

// dL/dh and dL/dc of the block's units for batch rows [r0, r0 + rows),
// [rows][U] in shared memory, from grad_h_n and grad_c_n.
template <typename T>
__device__ __forceinline__ void load_unit_grads(const PersistentBackwardParams<T>& p, int j0,
                                                int r0, int rows, acc_t<T>* dh_units,
                                                acc_t<T>* dc_units) {
  for (int e = threadIdx.x; e < rows * p.units; e += blockDim.x) {
    const int b = r0 + e / p.units, j = j0 + e % p.units;
    const bool inside = b < p.batch && j < p.hidden;
    const size_t cell = (size_t)b * p.hidden + j;
    dh_units[e] = inside ? p.grad_h_n[cell] : acc_t<T>(0);
    dc_units[e] = inside ? p.grad_c_n[cell] : acc_t<T>(0);
  }
}

// Phase A of a step for batch rows [r0, r0 + rows): the gate gradients of
// the block's units into dgates, and dL/dc_{t-1} into dc_units (and grad_c0
// for rows that started from c0), and where `kept` is given, the gradients
// as stored into it too ([rows][4H], a block that holds the whole layer).
template <typename T>
__device__ __forceinline__ void unit_gate_grads(const PersistentBackwardParams<T>& p,
                                                const ScheduledStep& step, int j0, int r0,
                                                int rows, const acc_t<T>* dh_units,
                                                acc_t<T>* dc_units, acc_t<T>* kept = nullptr) {
  using Acc = acc_t<T>;
  const int H = p.hidden, U = p.units;
  for (int e = threadIdx.x; e < rows * U; e += blockDim.x) {
    const int b = r0 + e / U, j = j0 + e % U;
    if (j >= H) continue;
    const size_t row = (size_t)step.offset + b, cell = row * H + j;
    const Acc* g = p.gates + row * kNumGates * H + j;
    const Acc c_prev = b < step.carried ? p.cells[((size_t)step.prev + b) * H + j]
                                        : to_acc(p.c0[(size_t)b * H + j]);
    const CellGrad<Acc> d = cell_backward(
        g[(size_t)kGateI * H], g[(size_t)kGateF * H], g[(size_t)kGateG * H],
        g[(size_t)kGateO * H], p.cells[cell], c_prev, to_acc(p.grad_output[cell]) + dh_units[e],
        dc_units[e]);
    store_gate_grads(p.dgates + row * kNumGates * H + j, d, H,
                     kept ? kept + (size_t)(e / U) * kNumGates * H + j : nullptr);
    dc_units[e] = d.dc_prev;
    if (b >= step.carried) p.grad_c0[(size_t)b * H + j] = d.dc_prev;
  }
}

// End of phase B for row b (the slice's row `local`), unit u: dL/dh_{t-1}
// for the next step, and grad_h0 for a row that started from h0.
template <typename T>
__device__ __forceinline__ void finish_unit_dh(const PersistentBackwardParams<T>& p,
                                               const ScheduledStep& step, int b, int local, int u,
                                               int j0, acc_t<T> dh, acc_t<T>* dh_units) {
  dh_units[local * p.units + u] = dh;
  if (b >= step.carried) p.grad_h0[(size_t)b * p.hidden + j0 + u] = dh;
}

template <typename T>
__global__ void __launch_bounds__(PersistentTile::kThreads, 1)
lstm_backward_persistent(PersistentBackwardParams<T> p) {
  using Acc = acc_t<T>;
  constexpr int kThreads = PersistentTile::kThreads;
  FASTLSTM_DYNAMIC_SHARED(unsigned char, shared_bytes);
  const int H = p.hidden, U = p.units;
  const int depth_total = kNumGates * H;
  Acc* w_slice = reinterpret_cast<Acc*>(shared_bytes);            // [U][4H + 1]: W_hh[n, j0 + u]
  Acc* dg_tile = w_slice + (size_t)U * (depth_total + 1);         // [rows][cols + 1]
  Acc* dh_units = dg_tile + PersistentTile::staging_elems(U);     // [B][U]: dL/dh_t from step t+1
  Acc* dc_units = dh_units + p.batch * U;                         // [B][U]: dL/dc_t from step t+1

  const int tid = threadIdx.x, j0 = blockIdx.x * U;
  const cooperative_groups::grid_group grid = cooperative_groups::this_grid();
  const SplitLayout lay = split_layout(U, p.batch, tid);
  const int cols = staging_columns(PersistentTile::staging_elems(U), lay.rows);
  for (int e = tid; e < U * depth_total; e += kThreads) {
    const int u = e / depth_total, n = e % depth_total, j = j0 + u;
    w_slice[(size_t)u * (depth_total + 1) + n] = j < H ? to_acc(p.w_hh[(size_t)n * H + j]) : Acc(0);
  }
  load_unit_grads(p, j0, 0, p.batch, dh_units, dc_units);
  __syncthreads();

  for (int k = p.sched.steps - 1; k >= 0; --k) {
    const ScheduledStep step = scheduled_step(p.sched, k);
    unit_gate_grads(p, step, j0, 0, step.rows, dh_units, dc_units);  // A
    grid.sync();
    const T* dgates_step = p.dgates + (size_t)step.offset * depth_total;
    for (int row0 = 0; row0 < step.rows; row0 += lay.rows) {  // B
      Acc acc = 0;
      for (int n0 = 0; n0 < depth_total; n0 += cols) {
        const int width = min(cols, depth_total - n0);
        for (int e = tid; e < lay.rows * width; e += kThreads) {
          const int r = e / width, n = e % width, b = row0 + r;
          dg_tile[r * (cols + 1) + n] =
              b < step.rows ? to_acc(dgates_step[(size_t)b * depth_total + n0 + n]) : Acc(0);
        }
        __syncthreads();
        if (lay.active && row0 + lay.row < step.rows) {
          const Acc* dg = dg_tile + lay.row * (cols + 1);
          const Acc* w = w_slice + (size_t)lay.unit * (depth_total + 1) + n0;
          for (int nn = lay.part; nn < width; nn += lay.split) acc += dg[nn] * w[nn];
        }
        __syncthreads();  // the next pass overwrites the tile
      }
      acc = sum_over_split(acc, lay.split);
      const int b = row0 + lay.row, j = j0 + lay.unit;
      if (lay.active && lay.part == 0 && b < step.rows && j < H) {
        finish_unit_dh(p, step, b, b, lay.unit, j0, acc, dh_units);
      }
    }
    __syncthreads();  // the next step's A reads dh_units written here by other threads
  }
}

}  // namespace fastlstm
