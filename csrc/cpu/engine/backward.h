// The backward recurrence of the CPU engine, one team for a run of steps.
// Each member owns a fixed slice of h's columns (panels of NR units). Per
// visited step, from the last:
//   A(t): the gate gradients of its units, from dL/dh_t of those units;
//   barrier (every unit's dgates_t written);
//   B(t): its columns of dL/dh_{t-1} = dgates_t W_hh, tile by tile, each
//         tile followed at once by A(t-1) of the same rows and units, which
//         needs nothing else: one barrier per step.
// With a projection dL/dh_t of the H units is dh_total W_hr, which needs
// every column of dh_total: P-columns and H-units are owned apart and the
// step takes a second barrier.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../engine.h"
#include "team.h"
#include "panels.h"
#include "tile.h"

namespace fastlstm::cpu::FASTLSTM_CPU_ISA {

template <typename V>
struct BackwardStep {
  using T = typename V::Scalar;
  using Wv = Wide<V>;
  static constexpr int64_t NR = Tile<V>::kNR;

  const BackwardSteps<T>& d;
  const StepSchedule& sched;

  int64_t step(int64_t k) const { return sched.step_at(k, d.reverse); }
  int64_t rows_of_visit(int64_t k) const { return sched.batch[step(k)]; }
  T* dgates_row(int64_t row) const { return d.dgates + (row - d.dgates_row0) * 4 * d.hidden; }
  T* dh_total_row(int64_t row) const { return d.dh_total + (row - d.dgates_row0) * d.proj; }
  const T* grad_output_row(int64_t row) const { return d.grad_output + row * d.grad_output_ld; }

  // A for rows [r0, r1) of visit k and units [u_first, u_last), with
  // dL/dh_t from dh(b, u0): the gradient of unit vector u0 of batch row b.
  template <typename DhOf>
  void gate_grads(int64_t k, int64_t r0, int64_t r1, int64_t u_first, int64_t u_last,
                  const DhOf& dh) const {
    const int64_t H = d.hidden, t = step(k), offset = sched.offset[t];
    for (int64_t b = r0; b < r1; ++b) {
      const int64_t row = offset + b, prev = sched.prev_row(t, b, d.reverse);
      const T* gates = d.gates + row * 4 * H;
      const T* c_prev = prev >= 0 ? d.cells + prev * H : d.c0 + b * H;
      T* dgates = dgates_row(row);
      for (int64_t u0 = u_first; u0 < u_last; u0 += NR) {
        const Lanes<Wv> l{static_cast<int>(std::min<int64_t>(NR, u_last - u0))};
        const CellGrad<Wv> g = cell_backward(
            l.load(gates + kGateI * H + u0), l.load(gates + kGateF * H + u0),
            l.load(gates + kGateG * H + u0), l.load(gates + kGateO * H + u0),
            l.load(d.cells + row * H + u0), l.load(c_prev + u0), dh(b, u0, l),
            l.load(d.dc_state + b * H + u0));
        l.store(g.di, dgates + kGateI * H + u0);
        l.store(g.df, dgates + kGateF * H + u0);
        l.store(g.dg, dgates + kGateG * H + u0);
        l.store(g.do_, dgates + kGateO * H + u0);
        l.store(g.dc_prev, d.dc_state + b * H + u0);
      }
    }
  }

  // The lines gate_grads(k, 0, rows, u_first, u_last, ...) reads and
  // writes, fetched while the tiles before it are computed: rows of the
  // workspace lie a power-of-two stride apart, far from the last ones read.
  void prefetch_gate_grads(int64_t k, int64_t u_first, int64_t u_last) const {
    if (k < d.k_begin || u_first >= u_last) return;
    const int64_t H = d.hidden, t = step(k), offset = sched.offset[t];
    for (int64_t b = 0; b < sched.batch[t]; ++b) {
      const int64_t row = offset + b, prev = sched.prev_row(t, b, d.reverse);
      for (int64_t u = u_first; u < u_last; u += 64 / sizeof(T)) {
        for (int g = 0; g < kNumGates; ++g) {
          __builtin_prefetch(d.gates + row * 4 * H + g * H + u, 0, 2);
          __builtin_prefetch(dgates_row(row) + g * H + u, 1, 2);
        }
        __builtin_prefetch(d.cells + row * H + u, 0, 2);
        if (prev >= 0) __builtin_prefetch(d.cells + prev * H + u, 0, 2);
        __builtin_prefetch(grad_output_row(row) + u, 0, 2);
      }
    }
  }

  // dL/dh_t of unit vector u0 without projection: the output's gradient
  // plus the recurrent one in dh_state.
  Wv direct_dh(int64_t k, int64_t b, int64_t u0, const Lanes<Wv>& l) const {
    const int64_t row = sched.offset[step(k)] + b;
    return l.load(grad_output_row(row) + u0) + l.load(d.dh_state + b * d.proj + u0);
  }

  // Without projection: A of visit k for rows [r0, r1), units of panels [q0, q1).
  void direct_gate_grads(int64_t k, int64_t r0, int64_t r1, int64_t q0, int64_t q1) const {
    const int64_t u_last = std::min(d.hidden, q1 * NR);
    gate_grads(k, r0, r1, q0 * NR, u_last,
               [&](int64_t b, int64_t u0, const Lanes<Wv>& l) { return direct_dh(k, b, u0, l); });
  }

  // With projection: dh_total of visit k = output gradient + dh_state, for
  // rows [r0, r1) and columns of panels [q0, q1).
  void total_dh(int64_t k, int64_t r0, int64_t r1, int64_t q0, int64_t q1) const {
    const int64_t P = d.proj, offset = sched.offset[step(k)];
    const int64_t c0 = q0 * NR, c1 = std::min(P, q1 * NR);
    for (int64_t b = r0; b < r1; ++b) {
      const T* g = grad_output_row(offset + b);
      T* out = dh_total_row(offset + b);
      for (int64_t c = c0; c < c1; ++c) out[c] = g[c] + d.dh_state[b * P + c];
    }
  }

  // Where recurrent_grads' runs of panels over [q0, q1) start, then q1.
  std::vector<int64_t> run_starts(int64_t q0, int64_t q1) const {
    const PanelGroups<V> w_hh{d.hh_panels, 4 * d.hidden, d.panel_group};
    std::vector<int64_t> starts;
    for (int64_t q = q0; q < q1; q += w_hh.run_from(q, q1, kMaxGroupPanels)) starts.push_back(q);
    starts.push_back(q1);
    return starts;
  }

  // B of visit k: columns of dL/dh_{t-1} into dh_state, a run of panels
  // (run_starts) at a time, the last run first where `backwards`, then
  // `after(b0, b1, q0, q1)` for every row block of each run's panels.
  template <typename After>
  void recurrent_grads(int64_t k, const std::vector<int64_t>& runs, bool backwards, T* tile,
                       const After& after) const {
    const int64_t H4 = 4 * d.hidden, P = d.proj, rows = rows_of_visit(k);
    const T* dgates = dgates_row(sched.offset[step(k)]);
    const PanelGroups<V> w_hh{d.hh_panels, H4, d.panel_group};
    constexpr int64_t ld = kMaxGroupPanels * NR;
    const size_t count = runs.size() - 1;
    for (size_t i = 0; i < count; ++i) {
      const size_t run = backwards ? count - 1 - i : i;
      const int64_t q = runs[run];
      const int np = static_cast<int>(runs[run + 1] - q);
      if (!d.hr_panels) prefetch_gate_grads(k - 1, q * NR, std::min(d.hidden, (q + np) * NR));
      blocked_tiles<V>(rows, H4,
                       [&](int64_t r0, int64_t k0) { return LeftBlock<T>{dgates + r0 * H4 + k0, H4, 1}; },
                       w_hh.panel(q), w_hh.width(), w_hh.stride(), np, tile, ld);
      for (int64_t r0 = 0; r0 < rows; r0 += Tile<V>::kMR) {
        const int64_t r1 = std::min(rows, r0 + Tile<V>::kMR);
        store_tile<V>(tile + r0 * ld, ld, static_cast<int>(r1 - r0),
                      std::min(np * NR, P - q * NR), d.dh_state + r0 * P + q * NR, P, false);
        after(r0, r1, q, q + np);
      }
    }
  }

  // With projection: A of visit k for the units of panels [q0, q1), with
  // dL/dh_t = dh_total W_hr computed a panel group at a time.
  void projected_gate_grads(int64_t k, int64_t q0, int64_t q1, T* tile) const {
    const int64_t H = d.hidden, P = d.proj, rows = rows_of_visit(k);
    const T* dh_total = dh_total_row(sched.offset[step(k)]);
    const PanelGroups<V> w_hr{d.hr_panels, P, d.panel_group};
    constexpr int64_t ld = kMaxGroupPanels * NR;
    for (int64_t q = q0; q < q1;) {
      const int np = w_hr.run_from(q, q1, kMaxGroupPanels);
      blocked_tiles<V>(rows, P,
                       [&](int64_t r0, int64_t k0) { return LeftBlock<T>{dh_total + r0 * P + k0, P, 1}; },
                       w_hr.panel(q), w_hr.width(), w_hr.stride(), np, tile, ld);
      const int64_t u_first = q * NR;
      gate_grads(k, 0, rows, u_first, std::min(H, (q + np) * NR),
                 [&](int64_t b, int64_t u0, const Lanes<Wv>&) {
                   return Wv::load(tile + b * ld + (u0 - u_first));
                 });
      q += np;
    }
  }
};

template <typename V>
void backward_steps(const BackwardSteps<typename V::Scalar>& d, int threads) {
  using T = typename V::Scalar;
  constexpr int64_t NR = Tile<V>::kNR;
  const StepSchedule& sched = *d.sched;
  if (d.k_end <= d.k_begin) return;
  const int64_t H = d.hidden, P = d.proj, B = sched.batch[0];
  const int64_t unit_panels = (H + NR - 1) / NR, col_panels = (P + NR - 1) / NR;
  const bool projected = d.hr_panels != nullptr;
  const int team = recurrence_team_size(threads, B * H * 4 * P);
  auto body = [&](int tid, int members, SpinBarrier& barrier) {
    const BackwardStep<V> s{d, sched};
    const Slice units = slice_of(unit_panels, tid, members);
    const Slice cols = slice_of(col_panels, tid, members);
    Scratch<T> tile_rows(static_cast<size_t>(B * kMaxGroupPanels * NR));
    T* tile = tile_rows.data();
    const Slice own = projected ? cols : units;
    const std::vector<int64_t> runs = s.run_starts(own.first, own.last);
    const int64_t last = d.k_end - 1;
    // The first visit's A (or, projected, its dh_total) has no B before it.
    if (projected) {
      s.total_dh(last, 0, s.rows_of_visit(last), cols.first, cols.last);
    } else {
      s.direct_gate_grads(last, 0, s.rows_of_visit(last), units.first, units.last);
    }
    for (int64_t k = last; k >= d.k_begin; --k) {
      if (projected) {
        barrier.arrive_and_wait();  // every column of dh_total_t written
        s.projected_gate_grads(k, units.first, units.last, tile);
      }
      barrier.arrive_and_wait();  // every unit's dgates_t written
      const bool next = k > d.k_begin;
      const int64_t rows = s.rows_of_visit(k), next_rows = next ? s.rows_of_visit(k - 1) : 0;
      // The next visit's first step for own columns, for rows this one
      // computed (r < rows) and, below, rows that start there.
      auto then = [&](int64_t r0, int64_t r1, int64_t q0, int64_t q1) {
        if (!next) return;
        r1 = std::min(r1, next_rows);
        if (r0 >= r1) return;
        projected ? s.total_dh(k - 1, r0, r1, q0, q1) : s.direct_gate_grads(k - 1, r0, r1, q0, q1);
      };
      // Every other step takes the runs backwards: the panels one step read
      // last, still in L2, are the first the next step reads.
      s.recurrent_grads(k, runs, k % 2 == 1, tile, then);
      if (next && next_rows > rows) {
        projected ? s.total_dh(k - 1, rows, next_rows, own.first, own.last)
                  : s.direct_gate_grads(k - 1, rows, next_rows, own.first, own.last);
      }
    }
  };
  run_team(team, body);
}

}  // namespace fastlstm::cpu::FASTLSTM_CPU_ISA
