// The forward recurrence of the CPU engine: one team for a whole run of
// steps. Each member owns a fixed slice of hidden units (blocks of NR), keeps W_hh's rows of those units packed and hot in its own cache,
// computes the recurrent product of its units for every row of the step with
// the register tile (tile.h), runs the cell update on it while it is in L1,
// and meets the others at one barrier per step (two with a projection: its
// columns are owned apart, and need every unit's h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../engine.h"
#include "team.h"
#include "panels.h"
#include "tile.h"

namespace fastlstm::cpu::FASTLSTM_CPU_ISA {

// The rows of h_{t-1} of one visited step, six at a time, read in place: rows
// that continue from the previous step are rows of the output, the others
// rows of h0; the one block with both is copied into `mixed` (prepare()).
template <typename T>
struct PreviousHidden {
  const T* output;
  const T* h0;
  int64_t width;       // P
  int64_t rows;        // rows of the step
  int64_t carried;     // leading rows that continue
  int64_t prev_offset; // first row of the previous step
  T* mixed;            // [kTileRows][P] scratch

  const T* row(int64_t r) const {
    return r < carried ? output + (prev_offset + r) * width : h0 + r * width;
  }
  // First row of the block with rows of both kinds, or -1.
  int64_t mixed_block() const {
    return carried % kTileRows != 0 && carried < rows ? carried / kTileRows * kTileRows : -1;
  }

  // Copies the mixed block, and starts fetching the first rows (written by
  // other members: their lines come from other cores) before the first tile
  // stalls on them.
  void prepare() const {
    const int64_t r0 = mixed_block();
    for (int64_t r = r0; r0 >= 0 && r < std::min(rows, r0 + kTileRows); ++r) {
      std::memcpy(mixed + (r - r0) * width, row(r), sizeof(T) * width);
    }
    for (int64_t r = 0; r < std::min<int64_t>(rows, kTileRows); ++r) {
      for (int64_t c = 0; c < width; c += 64 / sizeof(T)) __builtin_prefetch(row(r) + c, 0, 3);
    }
  }

  // Rows [r0, r0 + 6) from column k0 on, as the tile reads them.
  LeftBlock<T> block(int64_t r0, int64_t k0) const {
    return {(r0 == mixed_block() ? mixed : row(r0)) + k0, width, 1};
  }
};

// The forward step of one block of NR hidden units (owned by one member).
template <typename V>
struct ForwardUnits {
  using T = typename V::Scalar;
  using Wv = Wide<V>;
  static constexpr int64_t NR = Tile<V>::kNR;
  static constexpr int64_t kTileLd = kNumGates * NR;  // a row: the four gates of the block
  static_assert(Wv::kWidth == NR, "one wide vector per gate of a block");

  const ForwardSteps<T>& f;

  // Rows [r0, r0 + rows) of the step at row `offset`, units of block q: the
  // pre-activations (the tile's product, plus the input projection from the
  // gate rows unless the tile has it, plus bias) through the cell, written
  // where f asks. In two passes over the rows
  // (every gate activation, then the cell state), so that each pass's rows
  // are independent chains the core overlaps; the tile holds the activations
  // in between.
  void cell_update(int64_t offset, int64_t r0, int rows, int64_t q, T* tile) const {
    const int64_t H = f.hidden, u0 = q * NR;
    const Lanes<Wv> l{static_cast<int>(std::min<int64_t>(NR, H - u0))};
    auto gate_row = [&](int r) { return f.gates + (offset + r0 + r - f.gates_row0) * 4 * H + u0; };
    for (int r = 0; r < rows; ++r) {
      T* t = tile + r * kTileLd;
#pragma GCC unroll 4
      for (int g = 0; g < kNumGates; ++g) {
        Wv pre = Wv::load(t + g * NR);
        if (!f.input_panels) pre = l.load(gate_row(r) + g * H) + pre;
        activate_gate(g, pre + l.load(f.bias + g * H + u0)).store(t + g * NR);
      }
    }
    for (int r = 0; r < rows; ++r) {
      const int64_t b = r0 + r, row = offset + b;
      const T* t = tile + r * kTileLd;
      const Gates<Wv> a{Wv::load(t + kGateI * NR), Wv::load(t + kGateF * NR),
                        Wv::load(t + kGateG * NR), Wv::load(t + kGateO * NR)};
      const NextState<Wv> s = next_state(a, l.load(f.c_state + b * H + u0));
      if (f.keep_gates) {
        T* gates = gate_row(r);
        l.store(a.i, gates + kGateI * H);
        l.store(a.f, gates + kGateF * H);
        l.store(a.g, gates + kGateG * H);
        l.store(a.o, gates + kGateO * H);
      }
      l.store(s.c, f.c_state + b * H + u0);
      if (f.keep_cells) l.store(s.c, f.cells + row * H + u0);
      l.store(s.h, f.proj_panels ? f.hidden_rows + b * H + u0 : f.output + row * f.proj + u0);
    }
  }

  // The lines cell_update reads and writes for rows [0, rows) of block q,
  // fetched while the tiles before it are computed: rows of the gate buffer
  // lie a power-of-two stride apart, far from the lines touched last.
  void prefetch(int64_t offset, int64_t rows, int64_t q) const {
    const int64_t H = f.hidden, u0 = q * NR;
    const int64_t u_last = std::min(H, u0 + NR);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t row = offset + r;
      const T* gates = f.gates + (row - f.gates_row0) * 4 * H;
      for (int64_t u = u0; u < u_last; u += 64 / sizeof(T)) {
        if (f.keep_gates || !f.input_panels) {
          for (int g = 0; g < kNumGates; ++g) __builtin_prefetch(gates + g * H + u, 1, 2);
        }
        if (f.keep_cells) __builtin_prefetch(f.cells + row * H + u, 1, 2);
        if (!f.proj_panels) __builtin_prefetch(f.output + row * f.proj + u, 1, 2);
      }
    }
  }

  // Block q of one visited step: the recurrent product of every row over
  // the block's four gate panels (tile: [rows][kTileLd]), then the cells.
  void run(int64_t offset, int64_t rows, const PreviousHidden<T>& prev, int64_t q,
           T* tile) const {
    prefetch(offset, rows, q);
    const int64_t I = f.input_size;
    const PanelGroups<V> w_ih{f.input_panels, I, f.panel_group};
    const PanelGroups<V> w_hh{f.gate_panels, f.proj, f.panel_group};
    // The block's four gate panels are one group, or four groups of one.
    const int64_t panel = q * kNumGates;
    if (f.input_panels) {
      blocked_tiles<V>(
          rows, I, [&](int64_t r0, int64_t k0) { return LeftBlock<T>{f.input + (offset + r0) * I + k0, I, 1}; },
          w_ih.panel(panel), w_ih.width(), w_ih.stride(), kNumGates, tile, kTileLd);
    }
    blocked_tiles<V>(rows, f.proj, [&](int64_t r0, int64_t k0) { return prev.block(r0, k0); },
                     w_hh.panel(panel), w_hh.width(), w_hh.stride(), kNumGates, tile, kTileLd,
                     f.input_panels != nullptr);
    for (int64_t r0 = 0; r0 < rows; r0 += Tile<V>::kMR) {
      const int mr = static_cast<int>(std::min<int64_t>(Tile<V>::kMR, rows - r0));
      cell_update(offset, r0, mr, q, tile + r0 * kTileLd);
    }
  }
};

// Columns [q_first, q_last) of the projection, out = hidden W_hrᵀ, for the
// rows of one step, a panel group at a time.
template <typename V>
void project_rows(const ForwardSteps<typename V::Scalar>& f, int64_t offset, int64_t rows,
                  int64_t q_first, int64_t q_last, typename V::Scalar* tile) {
  using T = typename V::Scalar;
  constexpr int64_t NR = Tile<V>::kNR;
  const int64_t H = f.hidden, P = f.proj;
  const PanelGroups<V> out_panels{f.proj_panels, H, f.panel_group};
  for (int64_t q = q_first; q < q_last;) {
    const int np = out_panels.run_from(q, q_last, kMaxGroupPanels);
    blocked_tiles<V>(
        rows, H, [&](int64_t r0, int64_t k0) { return LeftBlock<T>{f.hidden_rows + r0 * H + k0, H, 1}; },
        out_panels.panel(q), out_panels.width(), out_panels.stride(), np, tile,
        kMaxGroupPanels * NR);
    store_tile<V>(tile, kMaxGroupPanels * NR, static_cast<int>(rows), std::min(np * NR, P - q * NR),
                  f.output + offset * P + q * NR, P, false);
    q += np;
  }
}

template <typename V>
void forward_steps(const ForwardSteps<typename V::Scalar>& f, int threads) {
  using T = typename V::Scalar;
  constexpr int64_t NR = Tile<V>::kNR;
  const StepSchedule& sched = *f.sched;
  const int64_t H = f.hidden, P = f.proj, B = sched.steps() ? sched.batch[0] : 0;
  const int64_t blocks = (H + NR - 1) / NR, proj_panels = (P + NR - 1) / NR;
  const bool projected = f.proj_panels != nullptr;
  const int team = recurrence_team_size(threads, B * H * 4 * (P + (f.input_panels ? f.input_size : 0)));
  auto body = [&](int tid, int members, SpinBarrier& barrier) {
    const Slice own = slice_of(blocks, tid, members);
    const Slice own_cols = slice_of(proj_panels, tid, members);
    Scratch<T> mixed(static_cast<size_t>(Tile<V>::kMR * P));
    Scratch<T> tile(static_cast<size_t>(B * kMaxGroupPanels * NR));
    const ForwardUnits<V> units{f};
    for (int64_t k = f.k_begin; k < f.k_end; ++k) {
      const int64_t t = sched.step_at(k, f.reverse);
      const int64_t rows = sched.batch[t], offset = sched.offset[t];
      const int64_t prev = sched.prev_step(t, f.reverse);
      const PreviousHidden<T> h_prev{f.output, f.h0, P, rows, sched.carried_rows(t, f.reverse),
                                     prev < 0 ? 0 : sched.offset[prev], mixed.data()};
      h_prev.prepare();
      // Every other step walks the blocks backwards: the panels one step
      // read last, still in L2, are the first the next step reads (where a
      // member's panels are more than its L2 holds, W_hh from H = 512 on).
      const bool backwards = k % 2 == 1;
      for (int64_t i = own.first; i < own.last; ++i) {
        const int64_t q = backwards ? own.last - 1 - (i - own.first) : i;
        units.run(offset, rows, h_prev, q, tile.data());
      }
      barrier.arrive_and_wait();  // every unit's h_t (or o*tanh(c)) written
      if (projected) {
        project_rows<V>(f, offset, rows, own_cols.first, own_cols.last, tile.data());
        barrier.arrive_and_wait();  // every column of the projected h_t written
      }
    }
  };
  run_team(team, body);
}

}  // namespace fastlstm::cpu::FASTLSTM_CPU_ISA
