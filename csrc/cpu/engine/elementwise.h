// Passes of the CPU engine over whole rows: one step for every row at once
// (single-step layers, LSTMCell: its products and cells), the hidden state
// recomputed for a projection's weight gradient, column sums, and the
// activations the tests bound. Same vectors and gate math as the recurrences.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>

#include "../engine.h"
#include "gemm.h"
#include "team.h"
#include "tile.h"

namespace fastlstm::cpu::FASTLSTM_CPU_ISA {

// body(row, u0, n) for every row and wide vector of units [u0, u0 + n) of H
// units, split over a team when there is enough of it.
template <typename V, typename Body>
void for_each_unit_vector(int64_t rows, int64_t H, int threads, const Body& body) {
  constexpr int64_t W = Wide<V>::kWidth;
  const int64_t per_row = (H + W - 1) / W;
  auto run = [&](int tid, int team, SpinBarrier&) {
    const Slice mine = slice_of(rows * per_row, tid, team);
    for (int64_t item = mine.first; item < mine.last; ++item) {
      const int64_t row = item / per_row, u0 = (item % per_row) * W;
      body(row, u0, static_cast<int>(std::min<int64_t>(W, H - u0)));
    }
  };
  // Gate math is about 30 operations per unit: count it as work.
  run_team(team_size(threads, rows * H * 32), run);
}

// Rows [0, rows) x units [u0, u1) of one step, from the products in gates
// (bias not yet added) to the activated gates, c and h.
template <typename V>
void cell_units(const CellRows<typename V::Scalar>& c, int64_t u0, int64_t u1) {
  const int64_t H = c.hidden;
  constexpr int64_t W = Wide<V>::kWidth;
  for (int64_t r = 0; r < c.rows; ++r) {
    for (int64_t u = u0; u < u1; u += W) {
      const Lanes<Wide<V>> l{static_cast<int>(std::min<int64_t>(W, u1 - u))};
      auto* gates = c.gates + r * 4 * H + u;
      Wide<V> pre[kNumGates];
      for (int g = 0; g < kNumGates; ++g) pre[g] = l.load(gates + g * H) + l.load(c.bias + g * H + u);
      const CellState<Wide<V>> s = cell_forward(pre[kGateI], pre[kGateF], pre[kGateG],
                                                pre[kGateO], l.load(c.c_prev + r * H + u));
      l.store(s.i, gates + kGateI * H);
      l.store(s.f, gates + kGateF * H);
      l.store(s.g, gates + kGateG * H);
      l.store(s.o, gates + kGateO * H);
      l.store(s.c, c.c + r * H + u);
      l.store(s.h, c.h + r * H + u);
    }
  }
}

// The products of units [u0, u1): for each gate, its columns of x W_ihᵀ,
// then h_prev W_hhᵀ added, as gemm_nt would give them; the gates in
// reverse order where `backwards`.
template <typename V>
void cell_products(const CellRows<typename V::Scalar>& c, int64_t u0, int64_t u1,
                   bool backwards) {
  const int64_t G = 4 * c.hidden;
  const GemmNT<typename V::Scalar> input{c.rows, G, c.input, c.x, c.w_ih, c.gates, G, false};
  const GemmNT<typename V::Scalar> recurrent{c.rows, G, c.proj, c.h_prev, c.w_hh, c.gates, G, true};
  for (int64_t i0 = 0; i0 < c.rows; i0 += kDotRowBlock) {
    const int64_t i1 = std::min(c.rows, i0 + kDotRowBlock);
    for (int i = 0; i < kNumGates; ++i) {
      const int64_t g = backwards ? kNumGates - 1 - i : i;
      dot_block<V>(input, i0, i1, g * c.hidden + u0, g * c.hidden + u1);
      dot_block<V>(recurrent, i0, i1, g * c.hidden + u0, g * c.hidden + u1);
    }
  }
}

// The units of one block of a step whose products run transposed (below):
// five tiles of six rows per gate.
constexpr int64_t kTransposedUnits = 30;

// Rows of a step from which its products run transposed: from a full
// panel of rows (32 floats, 16 doubles with AVX-512). Below it the dot
// products on the weights as they lie are faster (the A/B is in
// bench/results/cpu-xeon-avx512.md, "Thresholds of the engine").
template <typename V>
constexpr int64_t transposed_step_rows() {
  return Tile<V>::kNR;
}

// xᵀ and h_prevᵀ of a step as the register tile's right operand: panels
// [p] of NR rows, each [K][NR] (zero past the last row), W's rows then
// broadcast in place against them.
template <typename V>
struct TransposedRows {
  using T = typename V::Scalar;
  static constexpr int64_t NR = Tile<V>::kNR;
  int64_t panels, input, proj;
  T* x;  // [panels][I][NR]
  T* h;  // [panels][P][NR]

  static size_t size(const CellRows<T>& c) {
    return static_cast<size_t>((c.rows + NR - 1) / NR * NR * (c.input + c.proj));
  }
  // Panel tasks [first, last) of the 2 * panels (x's, then h's).
  void pack(const CellRows<T>& c, int64_t first, int64_t last) const {
    for (int64_t task = first; task < last; ++task) {
      const bool of_x = task < panels;
      const int64_t p = of_x ? task : task - panels, k = of_x ? input : proj;
      pack_panel_transposed<NR>(of_x ? c.x : c.h_prev, 0, k, p * NR,
                                std::min(NR, c.rows - p * NR), (of_x ? x : h) + p * k * NR);
    }
  }
};

// Units [u0, u1) of the step's products for many rows, x W_ihᵀ + h_prev
// W_hhᵀ computed as W [x | h_prev]ᵀ: tiles of W's rows (read once, in
// place) by panels of rows, each element one FMA chain over [x | h_prev].
// A block of kTransposedUnits units at a time: its four gates' tiles into
// `block` ([4 * kTransposedUnits][panels * NR]), then copied transposed into
// the gate rows, a gate's block of columns per row (the tiles' own columns
// would be one element of a row each, rows a power-of-two stride apart).
// The gates in reverse order where `backwards`.
template <typename V>
void transposed_products(const CellRows<typename V::Scalar>& c, const TransposedRows<V>& xt,
                         int64_t u0, int64_t u1, bool backwards, typename V::Scalar* block) {
  using T = typename V::Scalar;
  using TL = Tile<V>;
  constexpr int64_t NR = TL::kNR, KC = kGemmKC, kUnits = kTransposedUnits;
  const int64_t H = c.hidden, G = 4 * H, ld = xt.panels * NR;
  for (int64_t u = u0; u < u1; u += kUnits) {
    const int64_t units = std::min(kUnits, u1 - u);
    for (int i = 0; i < kNumGates; ++i) {
      const int g = backwards ? kNumGates - 1 - i : i;
      for (int64_t j = 0; j < units; j += TL::kMR) {
        const int mr = static_cast<int>(std::min<int64_t>(TL::kMR, units - j));
        const int64_t n = g * H + u + j;
        for (int64_t p = 0; p < xt.panels;) {
          const int np = static_cast<int>(std::min<int64_t>(TL::panels_for(mr), xt.panels - p));
          T* tile = block + (g * kUnits + j) * ld + p * NR;
          bool continued = false;
          auto chain = [&](const Matrix<T>& w, const T* panels, int64_t k) {
            for (int64_t k0 = 0; k0 < k; k0 += KC) {
              run_tile<V>(mr, np, std::min(KC, k - k0), LeftBlock<T>{row_of(w, n) + k0, w.ld, 1},
                          panels + p * k * NR + k0 * NR, NR, k * NR, tile, ld, continued);
              continued = true;
            }
          };
          chain(c.w_ih, xt.x, c.input);
          chain(c.w_hh, xt.h, c.proj);
          p += np;
        }
      }
    }
    for (int64_t b = 0; b < c.rows; ++b) {
      for (int g = 0; g < kNumGates; ++g) {
        T* row = c.gates + b * G + g * H + u;
        for (int64_t j = 0; j < units; ++j) row[j] = block[(g * kUnits + j) * ld + b];
      }
    }
  }
}

template <typename V>
void cell_rows(const CellRows<typename V::Scalar>& c, int threads) {
  // Every other call takes the weights' blocks backwards: a cell steps
  // with the same weights, and those one call read last, still in L2, are
  // the first the next one reads (where they are more than L2 holds).
  static std::atomic<unsigned> calls{0};
  const bool backwards = calls.fetch_add(1, std::memory_order_relaxed) % 2 == 1;
  constexpr int64_t W = Wide<V>::kWidth;
  const int64_t vectors = (c.hidden + W - 1) / W;
  // Gate math is about 30 operations per unit: count it as work.
  const int64_t work = c.rows * c.hidden * (32 + 4 * (c.input + c.proj));
  const bool transposed = c.rows >= transposed_step_rows<V>();
  constexpr int64_t NR = Tile<V>::kNR;
  const int64_t panels = (c.rows + NR - 1) / NR;
  Scratch<typename V::Scalar> packed(transposed ? TransposedRows<V>::size(c) : 0);
  const TransposedRows<V> xt{panels, c.input, c.proj, packed.data(),
                             packed.data() + panels * NR * c.input};
  auto run = [&](int tid, int team, SpinBarrier& barrier) {
    const Slice mine = slice_of(vectors, tid, team);
    const int64_t u0 = mine.first * W, u1 = std::min(c.hidden, mine.last * W);
    if (transposed) {
      const Slice tasks = slice_of(2 * panels, tid, team);
      xt.pack(c, tasks.first, tasks.last);
      barrier.arrive_and_wait();  // every panel packed
    }
    if (u0 >= u1) return;
    if (transposed) {
      Scratch<typename V::Scalar> block(static_cast<size_t>(4 * kTransposedUnits * panels * NR));
      transposed_products<V>(c, xt, u0, u1, backwards, block.data());
    } else {
      cell_products<V>(c, u0, u1, backwards);
    }
    cell_units<V>(c, u0, u1);
  };
  run_team(team_size(threads, work), run);
}

template <typename V>
void cell_grad_rows(const CellGradRows<typename V::Scalar>& c, int threads) {
  const int64_t H = c.hidden;
  for_each_unit_vector<V>(c.rows, H, threads, [&](int64_t r, int64_t u0, int n) {
    const Lanes<Wide<V>> l{n};
    const auto* gates = c.gates + r * 4 * H + u0;
    const CellGrad<Wide<V>> g = cell_backward(
        l.load(gates + kGateI * H), l.load(gates + kGateF * H), l.load(gates + kGateG * H),
        l.load(gates + kGateO * H), l.load(c.c + r * H + u0), l.load(c.c_prev + r * H + u0),
        l.load(c.dh + r * H + u0), l.load(c.dc + r * H + u0));
    auto* dgates = c.dgates + r * 4 * H + u0;
    l.store(g.di, dgates + kGateI * H);
    l.store(g.df, dgates + kGateF * H);
    l.store(g.dg, dgates + kGateG * H);
    l.store(g.do_, dgates + kGateO * H);
    l.store(g.dc_prev, c.dc_prev + r * H + u0);
  });
}

template <typename V>
void hidden_rows(int64_t rows, int64_t H, const typename V::Scalar* gates,
                 const typename V::Scalar* cells, typename V::Scalar* h) {
  for_each_unit_vector<V>(rows, H, 1, [&](int64_t r, int64_t u0, int n) {
    const Lanes<Wide<V>> l{n};
    l.store(hidden_from(l.load(gates + r * 4 * H + kGateO * H + u0), l.load(cells + r * H + u0)),
            h + r * H + u0);
  });
}

// Each column summed over rows in order, whatever the team: columns are
// split over it in whole blocks.
template <typename V>
void add_column_sums(int64_t rows, int64_t cols, const typename V::Scalar* x, int64_t ld,
                     double* sums, int threads) {
  constexpr int64_t kBlock = 256;  // columns of one block: its sums stay in L1
  const int64_t blocks = (cols + kBlock - 1) / kBlock;
  auto body = [&](int tid, int team, SpinBarrier&) {
    const Slice mine = slice_of(blocks, tid, team);
    for (int64_t j0 = mine.first * kBlock; j0 < std::min(cols, mine.last * kBlock); j0 += kBlock) {
      const int64_t j1 = std::min(cols, j0 + kBlock);
      for (int64_t r = 0; r < rows; ++r) {
        const auto* row = x + r * ld;
        for (int64_t j = j0; j < j1; ++j) sums[j] += static_cast<double>(row[j]);
      }
    }
  };
  run_team(team_size(threads, rows * cols * 8), body);
}

template <typename V>
void activations(int64_t n, const typename V::Scalar* x, typename V::Scalar* sigmoid_x,
                 typename V::Scalar* tanh_x) {
  constexpr int64_t W = Wide<V>::kWidth;
  for (int64_t i = 0; i < n; i += W) {
    const Lanes<Wide<V>> l{static_cast<int>(std::min<int64_t>(W, n - i))};
    const Wide<V> v = l.load(x + i);
    l.store(sigmoid(v), sigmoid_x + i);
    l.store(tanh_of(v), tanh_x + i);
  }
}

}  // namespace fastlstm::cpu::FASTLSTM_CPU_ISA
