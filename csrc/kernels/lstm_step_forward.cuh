// One forward time step of an LSTM layer in one kernel: the recurrent product
// h_{t-1} W_hhᵀ for all four gates as one 4H-wide product, then the cell
// update, with no round trip of the gate pre-activations through memory.
//
// A block owns kUnits hidden units and all four gate rows of each (4 x kUnits
// rows of W_hh), for a tile of kRowLanes * kRowsPerThread batch rows, so every
// W_hh element it stages in shared memory serves the whole row tile. Thread
// (unit u, row lane l) accumulates the four gates of unit u for rows
// l, l + kRowLanes, ...: everything cell_forward needs sits in its registers.
//
// What bounds it, at the fastrnns shape (T=100, B=64, I=H=512, fp32): a step
// is 2*64*2048*512 = 134 MFLOP against 4 MB of W_hh. W_hh stays resident in
// L2 across steps, and the narrow variant's 32 x 4 = 128 blocks each stream a
// 128 KB slice of it through shared memory, so a step is bound by L2-to-SM
// bandwidth and shared-memory loads (4 + R loads per 4R FMAs), not by HBM or
// FLOPs; at ~10 us per step the launch itself is a visible share, which the
// persistent kernel (part 2) removes.
#pragma once

#include "kernel_prelude.cuh"

#include "../gate_math.h"
#include "convert.cuh"
#include "step_params.h"

namespace fastlstm {

// Adds the recurrent product of row b, unit j (one value per gate) to the
// step's input projection and runs the cell update: c_t, h_t and, when
// saving, the workspace. Every forward step kernel ends with it.
template <typename T, bool kSaveWorkspace>
__device__ __forceinline__ void finish_forward_cell(const ForwardStepParams<T>& p, int b, int j,
                                                    const acc_t<T> (&recurrent)[kNumGates]) {
  using Acc = acc_t<T>;
  const int H = p.hidden;
  const size_t gate0 = (size_t)b * kNumGates * H + j, cell = (size_t)b * H + j;
  Acc pre[kNumGates];
  for (int g = 0; g < kNumGates; ++g) pre[g] = recurrent[g] + to_acc(p.pre_x[gate0 + (size_t)g * H]);
  const CellState<Acc> s =
      cell_forward(pre[kGateI], pre[kGateF], pre[kGateG], pre[kGateO], p.c_state[cell]);
  p.c_state[cell] = s.c;
  p.h_out[cell] = from_acc<T>(s.h);
  if (kSaveWorkspace) {
    p.gates[gate0 + (size_t)kGateI * H] = s.i;
    p.gates[gate0 + (size_t)kGateF * H] = s.f;
    p.gates[gate0 + (size_t)kGateG * H] = s.g;
    p.gates[gate0 + (size_t)kGateO * H] = s.o;
    p.cells[cell] = s.c;
  }
}

template <typename T, int kRowsPerThread, bool kSaveWorkspace>
__global__ void __launch_bounds__(ForwardTile::kThreads)
lstm_forward_step(ForwardStepParams<T> p) {
  using Acc = acc_t<T>;
  constexpr int kUnits = ForwardTile::kUnits, kRowLanes = ForwardTile::kRowLanes;
  constexpr int kDepth = ForwardTile::kDepth, kThreads = ForwardTile::kThreads;
  constexpr int kTileRows = kRowLanes * kRowsPerThread;
  // +1 column: threads of a warp read different units at the same depth.
  __shared__ Acc w_tile[kNumGates * kUnits][kDepth + 1];
  __shared__ Acc h_tile[kTileRows][kDepth + 1];

  const int tid = threadIdx.x;
  const int unit = tid % kUnits, lane = tid / kUnits;
  const int unit0 = blockIdx.x * kUnits, row0 = blockIdx.y * kTileRows;
  const int H = p.hidden, P = p.proj;

  Acc acc[kNumGates][kRowsPerThread] = {};
  for (int k0 = 0; k0 < P; k0 += kDepth) {
    // Consecutive threads take consecutive columns of one row: coalesced.
    for (int e = tid; e < kNumGates * kUnits * kDepth; e += kThreads) {
      const int r = e / kDepth, k = k0 + e % kDepth;
      const int j = unit0 + r % kUnits, gate_row = (r / kUnits) * H + j;
      w_tile[r][e % kDepth] = (j < H && k < P) ? to_acc(p.w_hh[(size_t)gate_row * P + k]) : Acc(0);
    }
    for (int e = tid; e < kTileRows * kDepth; e += kThreads) {
      const int r = e / kDepth, k = k0 + e % kDepth, b = row0 + r;
      Acc v = 0;
      if (b < p.rows && k < P) {
        v = b < p.carried ? to_acc(p.h_prev[(size_t)b * P + k]) : to_acc(p.h0[(size_t)b * P + k]);
      }
      h_tile[r][e % kDepth] = v;
    }
    __syncthreads();
    for (int k = 0; k < kDepth; ++k) {
      Acc h[kRowsPerThread];
      for (int r = 0; r < kRowsPerThread; ++r) h[r] = h_tile[lane + r * kRowLanes][k];
      for (int g = 0; g < kNumGates; ++g) {
        const Acc w = w_tile[g * kUnits + unit][k];
        for (int r = 0; r < kRowsPerThread; ++r) acc[g][r] += h[r] * w;
      }
    }
    __syncthreads();  // the next pass overwrites the tiles
  }

  const int j = unit0 + unit;
  if (j >= H) return;  // no barrier follows
  for (int r = 0; r < kRowsPerThread; ++r) {
    const int b = row0 + lane + r * kRowLanes;
    if (b >= p.rows) break;
    const Acc recurrent[kNumGates] = {acc[0][r], acc[1][r], acc[2][r], acc[3][r]};
    finish_forward_cell<T, kSaveWorkspace>(p, b, j, recurrent);
  }
}

}  // namespace fastlstm
