// One backward time step of an LSTM layer in one kernel: the gate gradients
// of step t (cell_backward from the shared header) and dL/dh_{t-1} =
// dgates W_hh, without writing dgates out and reading them back in between.
//
// A block owns kCols columns of dh_{t-1} for a tile of rows and walks the 4H
// depth of the product kChunkUnits hidden units (4 * kChunkUnits gate rows) at
// a time: it computes those units' gate gradients for its rows straight into
// shared memory, stages the matching W_hh rows, and multiplies. Every column
// tile therefore computes the same gate gradients; the first one
// (blockIdx.x == 0) also stores them (for the weight gradients, taken
// afterwards as whole-sequence GEMMs) and dL/dc_{t-1}. The recomputation is
// elementwise work on L2-resident rows; it saves a launch and a round trip of
// dgates per step, and costs about a third of the L2 traffic of the block's
// W_hh slice at kCols = 64 (4R rows x 9H inputs against 4H x 64 weights).
//
// What bounds it, at the fastrnns shape (B=64, H=P=512, fp32): 134 MFLOP and
// the 4 MB of W_hh per step, L2-resident across steps, as in the forward step;
// 8 column tiles x 8 row tiles = 64 blocks (narrow) leave half of an H100's
// SMs idle, so the step is latency-bound, the case the persistent backward
// kernel of part 2 addresses.
#pragma once

#include "kernel_prelude.cuh"

#include "../gate_math.h"
#include "convert.cuh"
#include "step_params.h"

namespace fastlstm {

// Stores the gate gradients of one (row, unit); dg points at the row's
// input-gate column of the unit, the other gates follow H apart. Where
// `kept` is given (laid out as dg), the values as stored go there too: a
// block's copy on chip.
template <typename T>
__device__ __forceinline__ void store_gate_grads(T* dg, const CellGrad<acc_t<T>>& d, int H,
                                                 acc_t<T>* kept = nullptr) {
  const T stored[kNumGates] = {from_acc<T>(d.di), from_acc<T>(d.df), from_acc<T>(d.dg),
                               from_acc<T>(d.do_)};
  for (int g = 0; g < kNumGates; ++g) {
    dg[(size_t)g * H] = stored[g];
    if (kept) kept[(size_t)g * H] = to_acc(stored[g]);
  }
}

// Gate gradients of one (row, unit) of the step, as cell_backward gives them.
template <typename T>
__device__ __forceinline__ CellGrad<acc_t<T>> step_cell_grad(const BackwardStepParams<T>& p,
                                                             int b, int j) {
  using Acc = acc_t<T>;
  const int H = p.hidden;
  const size_t cell = (size_t)b * H + j;
  const Acc* g = p.gates + (size_t)b * kNumGates * H + j;
  const Acc c_prev = b < p.carried ? p.c_prev[cell] : to_acc(p.c0[cell]);
  Acc dh = to_acc(p.dh_out[cell]);
  if (p.dh_rec) dh += p.dh_rec[cell];
  return cell_backward(g[(size_t)kGateI * H], g[(size_t)kGateF * H], g[(size_t)kGateG * H],
                       g[(size_t)kGateO * H], p.cells[cell], c_prev, dh, p.dc_next[cell]);
}

template <typename T, int kRowsPerThread>
__global__ void __launch_bounds__(BackwardTile::kThreads)
lstm_backward_step(BackwardStepParams<T> p) {
  using Acc = acc_t<T>;
  constexpr int kCols = BackwardTile::kCols, kRowLanes = BackwardTile::kRowLanes;
  constexpr int kChunkUnits = BackwardTile::kChunkUnits, kDepth = BackwardTile::kDepth;
  constexpr int kThreads = BackwardTile::kThreads;
  constexpr int kTileRows = kRowLanes * kRowsPerThread;
  __shared__ Acc dgate_tile[kTileRows][kDepth + 1];  // column = gate * kChunkUnits + unit
  __shared__ Acc w_tile[kDepth][kCols];

  const int tid = threadIdx.x;
  const int col = tid % kCols, lane = tid / kCols;
  const int col0 = blockIdx.x * kCols, row0 = blockIdx.y * kTileRows;
  const int H = p.hidden, P = p.proj;
  const bool stores_dgates = blockIdx.x == 0;

  Acc acc[kRowsPerThread] = {};
  for (int j0 = 0; j0 < H; j0 += kChunkUnits) {
    for (int e = tid; e < kTileRows * kChunkUnits; e += kThreads) {
      const int r = e / kChunkUnits, u = e % kChunkUnits, b = row0 + r, j = j0 + u;
      CellGrad<Acc> d = {};
      if (b < p.rows && j < H) {
        d = step_cell_grad(p, b, j);
        if (stores_dgates) {
          store_gate_grads(p.dgates + (size_t)b * kNumGates * H + j, d, H);
          p.dc_prev[(size_t)b * H + j] = d.dc_prev;
        }
      }
      dgate_tile[r][kGateI * kChunkUnits + u] = d.di;
      dgate_tile[r][kGateF * kChunkUnits + u] = d.df;
      dgate_tile[r][kGateG * kChunkUnits + u] = d.dg;
      dgate_tile[r][kGateO * kChunkUnits + u] = d.do_;
    }
    // Consecutive threads take consecutive columns of one W_hh row: coalesced.
    for (int e = tid; e < kDepth * kCols; e += kThreads) {
      const int n = e / kCols, c = col0 + e % kCols;
      const int j = j0 + n % kChunkUnits, gate_row = (n / kChunkUnits) * H + j;
      w_tile[n][e % kCols] = (j < H && c < P) ? to_acc(p.w_hh[(size_t)gate_row * P + c]) : Acc(0);
    }
    __syncthreads();
    for (int n = 0; n < kDepth; ++n) {
      const Acc w = w_tile[n][col];
      for (int r = 0; r < kRowsPerThread; ++r) acc[r] += dgate_tile[lane + r * kRowLanes][n] * w;
    }
    __syncthreads();  // the next pass overwrites the tiles
  }

  const int c = col0 + col;
  if (c >= P) return;
  for (int r = 0; r < kRowsPerThread; ++r) {
    const int b = row0 + lane + r * kRowLanes;
    if (b < p.rows) p.dh_prev[(size_t)b * P + c] = acc[r];
  }
}

}  // namespace fastlstm
