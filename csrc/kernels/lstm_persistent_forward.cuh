// All time steps of a layer direction in one cooperative launch. Block k
// owns `units` hidden units (all four gate rows of each) and keeps that
// slice of W_hh in shared memory for the whole sequence, with the cell state
// of its units; per step it reads h_{t-1} (every block's output of the
// previous step, through L2), computes its units' gates and cell update,
// writes its slice of h_t, and the grid syncs. W_hh is read from global
// memory once per launch instead of once per step, and there is one launch
// per sequence instead of one per step: what wins at small batch, where a
// step is a few microseconds of latency-bound work.
//
// What bounds it (H100, fp32, H=512, B=4): 132 blocks of 4 units hold 32 KB
// of W_hh each; a step is 2*4*2048*512 = 8.4 MFLOP spread over all SMs, so
// the grid barrier and the L2 round trip of h_t (B*H*4 = 8 KB) set the pace.
#pragma once

#include "kernel_prelude.cuh"

#include "../gate_math.h"
#include "convert.cuh"
#include "persistent_schedule.cuh"
#include "persistent_split.cuh"
#include "step_params.h"

namespace fastlstm {

// The cell state of the block's units, [B][U] in shared memory, from and
// back to c_state: it stays on chip for all the launch's steps.
template <typename T>
__device__ __forceinline__ void load_unit_cells(const PersistentForwardParams<T>& p, int j0,
                                                acc_t<T>* c_units) {
  for (int e = threadIdx.x; e < p.batch * p.units; e += blockDim.x) {
    const int j = j0 + e % p.units;
    c_units[e] = j < p.hidden ? p.c_state[(size_t)(e / p.units) * p.hidden + j] : acc_t<T>(0);
  }
}

template <typename T>
__device__ __forceinline__ void store_unit_cells(const PersistentForwardParams<T>& p, int j0,
                                                 const acc_t<T>* c_units) {
  for (int e = threadIdx.x; e < p.batch * p.units; e += blockDim.x) {
    const int j = j0 + e % p.units;
    if (j < p.hidden) p.c_state[(size_t)(e / p.units) * p.hidden + j] = c_units[e];
  }
}

// The input projection of row b, unit j of a step: x W_ihᵀ + b, one per gate.
template <typename T>
__device__ __forceinline__ void load_pre_x(const PersistentForwardParams<T>& p,
                                           const ScheduledStep& step, int b, int j,
                                           acc_t<T> (&pre)[kNumGates]) {
  const size_t gate0 = ((size_t)step.offset + b - p.row0) * kNumGates * p.hidden + j;
  for (int g = 0; g < kNumGates; ++g) pre[g] = to_acc(p.pre_x[gate0 + (size_t)g * p.hidden]);
}

// Cell update of row b, unit j of a step from its pre-activations (input
// projection plus recurrent product, one per gate); c is the unit's cell
// state on chip.
template <typename T, bool kSaveWorkspace>
__device__ __forceinline__ acc_t<T> finish_persistent_cell(const PersistentForwardParams<T>& p,
                                                           const ScheduledStep& step, int b,
                                                           int j,
                                                           const acc_t<T> (&pre)[kNumGates],
                                                           acc_t<T>& c) {
  using Acc = acc_t<T>;
  const int H = p.hidden;
  const size_t row = (size_t)step.offset + b;
  const size_t gate0 = (row - p.row0) * kNumGates * H + j;
  const CellState<Acc> s = cell_forward(pre[kGateI], pre[kGateF], pre[kGateG], pre[kGateO], c);
  c = s.c;
  const T h = from_acc<T>(s.h);
  p.output[row * H + j] = h;
  if (kSaveWorkspace) {
    p.gates[gate0 + (size_t)kGateI * H] = s.i;
    p.gates[gate0 + (size_t)kGateF * H] = s.f;
    p.gates[gate0 + (size_t)kGateG * H] = s.g;
    p.gates[gate0 + (size_t)kGateO * H] = s.o;
    p.cells[row * H + j] = s.c;
  }
  return to_acc(h);  // h_t as stored, for a block that keeps it on chip
}

template <typename T, bool kSaveWorkspace>
__global__ void __launch_bounds__(PersistentTile::kThreads, 1)
lstm_forward_persistent(PersistentForwardParams<T> p) {
  using Acc = acc_t<T>;
  constexpr int kThreads = PersistentTile::kThreads;
  FASTLSTM_DYNAMIC_SHARED(unsigned char, shared_bytes);
  const int H = p.hidden, U = p.units;
  const size_t gate_stride = (size_t)U * (H + 1);  // from one gate's rows to the next
  Acc* w_slice = reinterpret_cast<Acc*>(shared_bytes);                 // [4U][H + 1]: row g*U + u
  Acc* h_tile = w_slice + 4 * gate_stride;                             // [rows][cols + 1]
  Acc* c_units = h_tile + PersistentTile::staging_elems(U);            // [B][U]

  const int tid = threadIdx.x, j0 = blockIdx.x * U;
  const cooperative_groups::grid_group grid = cooperative_groups::this_grid();
  const SplitLayout lay = split_layout(U, p.batch, tid);
  const int cols = staging_columns(PersistentTile::staging_elems(U), lay.rows);
  for (int e = tid; e < 4 * U * H; e += kThreads) {
    const int r = e / H, k = e % H, j = j0 + r % U;
    w_slice[(size_t)r * (H + 1) + k] =
        j < H ? to_acc(p.w_hh[(size_t)((r / U) * H + j) * H + k]) : Acc(0);
  }
  load_unit_cells(p, j0, c_units);
  __syncthreads();

  for (int k = p.k_begin; k < p.k_end; ++k) {
    const ScheduledStep step = scheduled_step(p.sched, k);
    const T* h_prev = step.prev >= 0 ? p.output + (size_t)step.prev * H : nullptr;
    for (int row0 = 0; row0 < step.rows; row0 += lay.rows) {
      Acc acc[kNumGates] = {};
      for (int k0 = 0; k0 < H; k0 += cols) {
        const int width = min(cols, H - k0);
        for (int e = tid; e < lay.rows * width; e += kThreads) {
          const int r = e / width, col = e % width, b = row0 + r;
          Acc v = 0;
          if (b < step.rows) {
            v = b < step.carried ? to_acc(h_prev[(size_t)b * H + k0 + col])
                                  : to_acc(p.h0[(size_t)b * H + k0 + col]);
          }
          h_tile[r * (cols + 1) + col] = v;
        }
        __syncthreads();
        if (lay.active && row0 + lay.row < step.rows) {
          const Acc* h = h_tile + lay.row * (cols + 1);
          const Acc* w = w_slice + (size_t)lay.unit * (H + 1) + k0;
          for (int kk = lay.part; kk < width; kk += lay.split) {
            const Acc hv = h[kk];
            for (int g = 0; g < kNumGates; ++g) acc[g] += hv * w[g * gate_stride + kk];
          }
        }
        __syncthreads();  // the next pass overwrites the tile
      }
      for (int g = 0; g < kNumGates; ++g) acc[g] = sum_over_split(acc[g], lay.split);
      const int b = row0 + lay.row, j = j0 + lay.unit;
      if (lay.active && lay.part == 0 && b < step.rows && j < H) {
        Acc pre[kNumGates];
        load_pre_x(p, step, b, j, pre);
        for (int g = 0; g < kNumGates; ++g) pre[g] += acc[g];
        finish_persistent_cell<T, kSaveWorkspace>(p, step, b, j, pre, c_units[b * U + lay.unit]);
      }
    }
    // h_t of every block is written before any block reads it as h_{t-1}.
    grid.sync();
  }
  store_unit_cells(p, j0, c_units);
}

}  // namespace fastlstm
