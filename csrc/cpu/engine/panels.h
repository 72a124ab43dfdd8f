// The right operands of the recurrences, packed once per call: columns in
// panels of NR by the full K, in groups of `per` panels side by side per k
// ([K][per * NR]), each member's slice contiguous and hot in its own cache
// for every step.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../engine.h"
#include "team.h"
#include "tile.h"

namespace fastlstm::cpu::FASTLSTM_CPU_ISA {

// Panels per group: four for tiles of one to three rows (a batch that
// small reads every panel of a block in one pass, one stream), one (each
// panel contiguous, streamed alone) for wider ones.
constexpr int kMaxGroupPanels = 4;
inline int panels_per_group(int64_t batch) { return batch <= 3 ? kMaxGroupPanels : 1; }

// The weights a core can stream once per step at L2-like speed: its L2,
// and the L2 of one partner (the team's other half), or on AMD, whose L3 is
// a victim cache close to each core, 8 L2s (measured on a 1 MiB-L2 Zen 4:
// in-step projection faster at 8 MiB of weights, B = 4 and 16; on a 2 MiB-L2
// Sapphire Rapids Xeon, whose mesh L3 gives a core about 28 GB/s, 1.9x
// slower at 8 MiB and faster at 2 MiB).
inline int64_t step_stream_bytes() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool amd = __builtin_cpu_is("amd");
#else
  constexpr bool amd = false;
#endif
  return (amd ? 8 : 2) * core_l2_bytes();
}

// Whether the forward steps project their input themselves ([x_t | h_{t-1}]
// against [W_ih ; W_hh] in one tile), so that the projection never makes a
// round trip through memory: from batch 4 where W_ih and W_hh together
// stream from cache each step (step_stream_bytes), cheaper than a separate
// product's pass over the gates, or where the batch is large enough that
// W_ih's per-step reads cost less than the products they feed. Otherwise
// one product over all steps, where W_ih is read once. By shape and machine
// only: results must not depend on the thread count.
inline bool projects_input_in_steps(int64_t batch, int64_t weight_bytes) {
  return batch >= 32 || (batch >= 4 && weight_bytes <= step_stream_bytes());
}

template <typename V>
struct PanelGroups {
  using T = typename V::Scalar;
  static constexpr int64_t kNR = Tile<V>::kNR;

  const T* data;
  int64_t k;    // rows of every panel
  int per;      // panels per group: panels_per_group(batch)

  int64_t width() const { return per * kNR; }  // ldb of every panel
  // Panel q (columns [q NR, q NR + NR)): the tile's b, with ldb width().
  const T* panel(int64_t q) const { return data + q / per * k * width() + q % per * kNR; }
  // From one panel to the next: side by side in a group, else one after
  // another (groups of one).
  int64_t stride() const { return per == 1 ? k * kNR : kNR; }
  // Panels from q on that lie at stride() from each other (in q's group,
  // or any where groups are of one), at most `most`.
  int run_from(int64_t q, int64_t q_last, int most) const {
    return static_cast<int>(std::min<int64_t>({most, q_last - q, per == 1 ? most : per - q % per}));
  }
  static size_t size(int64_t k, int64_t n, int per) {
    const int64_t width = per * kNR;
    return static_cast<size_t>((n + width - 1) / width * k * width);
  }
};

// Packs B's columns [0, n) as panel groups of `per` panels, panel q made by
// pack_panel_at(q, [k][NR] scratch), zero past n.
template <typename V, typename PackPanel>
void pack_groups(int64_t k, int64_t n, int per, typename V::Scalar* out, int threads,
                 const PackPanel& pack_panel_at) {
  using T = typename V::Scalar;
  constexpr int64_t NR = Tile<V>::kNR;
  const PanelGroups<V> groups{out, k, per};
  const int64_t panels = (n + NR - 1) / NR;
  const int64_t padded = (panels + per - 1) / per * per;
  auto body = [&](int tid, int team, SpinBarrier&) {
    const Slice mine = slice_of(padded, tid, team);
    Scratch<T> panel(static_cast<size_t>(k * NR));
    for (int64_t q = mine.first; q < mine.last; ++q) {
      if (q < panels) {
        pack_panel_at(q, panel.data());
      } else {
        std::fill(panel.data(), panel.data() + k * NR, T(0));  // the empty panels of the last group
      }
      T* dst = const_cast<T*>(groups.panel(q));
      for (int64_t r = 0; r < k; ++r) {
        std::copy(panel.data() + r * NR, panel.data() + (r + 1) * NR, dst + r * groups.width());
      }
    }
  };
  run_team(team_size(threads, padded * k * NR), body);
}

// W_hh [4H, P] as one group per block of NR units: panel g of block q holds
// gate g (i, f, g, o) of its units, so that a tile over the group holds
// each gate of the block's units side by side.
template <typename V>
size_t gate_panels_size(int64_t H, int64_t P, int per) {
  return PanelGroups<V>::size(P, (H + Tile<V>::kNR - 1) / Tile<V>::kNR * kNumGates * Tile<V>::kNR,
                              per);
}

template <typename V>
void pack_gate_panels(const typename V::Scalar* w_hh, int64_t H, int64_t P, int per,
                      typename V::Scalar* out, int threads) {
  using T = typename V::Scalar;
  constexpr int NR = Tile<V>::kNR;
  const int64_t blocks = (H + NR - 1) / NR;
  pack_groups<V>(P, blocks * kNumGates * NR, per, out, threads, [&](int64_t q, T* panel) {
    const int64_t unit0 = q / kNumGates * NR, gate = q % kNumGates;
    pack_panel_transposed<NR>(Matrix<T>{w_hh + gate * H * P, P}, 0, P, unit0,
                              std::min<int64_t>(NR, H - unit0), panel);
  });
}

// B [K, N] as panel groups: B by rows or, with transposed, B = Wᵀ for W
// [N, K] by rows.
template <typename V>
size_t panels_size(int64_t K, int64_t N, int per) {
  return PanelGroups<V>::size(K, N, per);
}

template <typename V>
void pack_panels(Matrix<typename V::Scalar> b, int64_t K, int64_t N, bool transposed, int per,
                 typename V::Scalar* out, int threads) {
  using T = typename V::Scalar;
  constexpr int NR = Tile<V>::kNR;
  pack_groups<V>(K, N, per, out, threads, [&](int64_t q, T* panel) {
    const int64_t cols = std::min<int64_t>(NR, N - q * NR);
    transposed ? pack_panel_transposed<NR>(b, 0, K, q * NR, cols, panel)
               : pack_panel<NR>(b, 0, K, q * NR, cols, panel);
  });
}

}  // namespace fastlstm::cpu::FASTLSTM_CPU_ISA
