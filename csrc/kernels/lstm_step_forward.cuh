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
#include "accumulate.cuh"
#include "step_params.h"

namespace fastlstm {

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
      w_tile[r][e % kDepth] = (j < H && k < P) ? Acc(p.w_hh[(size_t)gate_row * P + k]) : Acc(0);
    }
    for (int e = tid; e < kTileRows * kDepth; e += kThreads) {
      const int r = e / kDepth, k = k0 + e % kDepth, b = row0 + r;
      Acc v = 0;
      if (b < p.rows && k < P) {
        v = b < p.carried ? Acc(p.h_prev[(size_t)b * P + k]) : Acc(p.h0[(size_t)b * P + k]);
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
    const size_t gate0 = (size_t)b * kNumGates * H + j;
    Acc pre[kNumGates];
    for (int g = 0; g < kNumGates; ++g) pre[g] = acc[g][r] + Acc(p.pre_x[gate0 + (size_t)g * H]);
    const size_t cell = (size_t)b * H + j;
    const CellState<Acc> s =
        cell_forward(pre[kGateI], pre[kGateF], pre[kGateG], pre[kGateO], Acc(p.c_state[cell]));
    p.c_state[cell] = T(s.c);
    p.h_out[cell] = T(s.h);
    if (kSaveWorkspace) {
      p.gates[gate0 + (size_t)kGateI * H] = T(s.i);
      p.gates[gate0 + (size_t)kGateF * H] = T(s.f);
      p.gates[gate0 + (size_t)kGateG * H] = T(s.g);
      p.gates[gate0 + (size_t)kGateO * H] = T(s.o);
      p.cells[cell] = T(s.c);
    }
  }
}

}  // namespace fastlstm
