// The whole-matrix products of the CPU engine.
//
// gemm_nn: C (+)= A . B, B row-major [K, N] (weights as they lie, input rows,
// or rows gathered by pointer). Blocked as in BLIS (K blocks of kKC, row
// blocks of kMC, column blocks split over the team), with A read in place and
// B read in place too unless its rows are gathered or its last panel is
// partial, which are packed. Every element is the same sequence of kKC-long
// FMA chains added in order, whatever the blocking and the team: results
// depend on the shape only.
//
// gemm_nt: C (+)= A . Wᵀ for W [N, K] as it lies (x W_ihᵀ, h W_hhᵀ): dot
// products vectorized along k, each reduced in a fixed lane order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../engine.h"
#include "team.h"
#include "tile.h"

namespace fastlstm::cpu::FASTLSTM_CPU_ISA {

// Where block r0 / kTileRows of a packed A starts: blocks [kc][MR] one
// line apart more than their size, so that the blocks' stores, written side
// by side for every k, do not alias the loads of S's rows (a power-of-two
// stride apart) modulo 4 KB, which stalls each load on them.
inline int64_t packed_block_start(int64_t r0, int64_t kc) {
  return r0 / kTileRows * (kTileRows * kc + 16);
}
constexpr int64_t packed_left_size(int64_t mc, int64_t kc) {
  return (mc + kTileRows - 1) / kTileRows * (kTileRows * kc + 16);
}

// Rows [i0, i0 + mc) and columns [k0, k0 + kc) of A = Sᵀ, packed as row
// blocks of MR: block b is [kc][mr] at out + packed_block_start(b * MR, kc).
// A's columns are S's rows, a power-of-two stride apart where S is a gate
// buffer: each is read once, end to end, so that no cache set has to hold
// all of them. (A given by rows is read in place: six sequential streams.)
template <typename T>
void pack_transposed_left(const GemmNN<T>& g, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
                          T* out) {
  const int64_t full = mc / kTileRows * kTileRows;
  for (int64_t k = 0; k < kc; ++k) {
    const T* src = g.a.data + (k0 + k) * g.a.ld + i0;
    T* dst = out + k * kTileRows;
    for (int64_t r0 = 0; r0 < full; r0 += kTileRows, dst += packed_block_start(kTileRows, kc)) {
      std::memcpy(dst, src + r0, sizeof(T) * kTileRows);
    }
    const int64_t tail = mc - full;
    for (int64_t r = 0; r < tail; ++r) out[packed_block_start(full, kc) + k * tail + r] = src[full + r];
  }
}

// K per block: each C element is a sum of kGemmKC-long FMA chains.
constexpr int64_t kGemmKC = 512;

// Every line of a rows x cols block of C, fetched for writing while the
// tiles before it are computed: C's rows lie far apart, its block is reread
// for every K block, and where a product's K is short (a single step's
// weight gradients, K = B) the tiles' stores wait on lines from memory.
template <typename T>
void prefetch_rows(const T* c, int64_t ldc, int rows, int64_t cols) {
  for (int r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < cols; j += 64 / sizeof(T)) __builtin_prefetch(c + r * ldc + j, 1, 3);
    __builtin_prefetch(c + r * ldc + cols - 1, 1, 3);
  }
}

// Row tiles ahead of the one computed whose C lines block_product fetches.
constexpr int64_t kPrefetchTilesAhead = 2;

// Rows [i0, i0 + mc) times the packed columns [n0, n0 + ncols) of one K block
// into C: panel by panel (panel q of the block at b_panels + q *
// panel_stride), so that each panel stays in L1 across row blocks.
template <typename V>
void block_product(const GemmNN<typename V::Scalar>& g, const typename V::Scalar* a_packed,
                   bool a_in_place, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
                   const typename V::Scalar* b_panels, int64_t panel_stride, int64_t n0,
                   int64_t ncols, bool add) {
  using T = typename V::Scalar;
  using TL = Tile<V>;
  constexpr int64_t NR = TL::kNR;
  T tile[TL::kTileSize];
  auto left = [&](int64_t r0, int mr) {
    if (!g.a_transposed) return LeftBlock<T>{g.a.data + (i0 + r0) * g.a.ld + k0, g.a.ld, 1};
    if (a_in_place) return LeftBlock<T>{g.a.data + k0 * g.a.ld + i0 + r0, 1, g.a.ld};
    return LeftBlock<T>{a_packed + packed_block_start(r0, kc), 1, mr};
  };
  const int64_t panels = (ncols + NR - 1) / NR, full_rows = mc / TL::kMR * TL::kMR;
  for (int64_t q = 0; q < panels;) {
    const int np = static_cast<int>(std::min<int64_t>(TL::panels_for(TL::kMR), panels - q));
    const T* bq = b_panels + q * panel_stride;
    const int64_t cols = std::min(np * NR, ncols - q * NR);
    T* cq = g.c + i0 * g.ldc + n0 + q * NR;
    for (int64_t r0 = 0; r0 < std::min(full_rows, kPrefetchTilesAhead * TL::kMR); r0 += TL::kMR) {
      prefetch_rows(cq + r0 * g.ldc, g.ldc, TL::kMR, cols);
    }
    for (int64_t r0 = 0; r0 < full_rows; r0 += TL::kMR) {
      const int64_t ahead = r0 + kPrefetchTilesAhead * TL::kMR;
      if (ahead < full_rows) prefetch_rows(cq + ahead * g.ldc, g.ldc, TL::kMR, cols);
      run_tile<V>(TL::kMR, np, kc, left(r0, TL::kMR), bq, NR, panel_stride, tile, np * NR);
      store_tile<V>(tile, np * NR, TL::kMR, cols, g.c + (i0 + r0) * g.ldc + n0 + q * NR, g.ldc,
                    add);
    }
    q += np;
  }
  if (full_rows == mc) return;
  const int mr = static_cast<int>(mc - full_rows);
  for (int64_t q = 0; q < panels;) {
    const int np = static_cast<int>(std::min<int64_t>(TL::panels_for(mr), panels - q));
    run_tile<V>(mr, np, kc, left(full_rows, mr), b_panels + q * panel_stride, NR, panel_stride,
                tile, np * NR);
    store_tile<V>(tile, np * NR, mr, std::min(np * NR, ncols - q * NR),
                  g.c + (i0 + full_rows) * g.ldc + n0 + q * NR, g.ldc, add);
    q += np;
  }
}

// C (+)= A . B for at most one row block of A (kMC rows), B read in place
// but for its partial last panel: packing B, a pass that reads and writes
// all of it, would cost as much as the product's own reads of it (a single
// step's products with the weights). Groups of panels outer, row tiles
// inner, so that each group stays in L2 while every row tile reads it, as
// in the packed path; the same K blocks and FMA chains, so the same results.
template <typename V>
void few_rows_product(const GemmNN<typename V::Scalar>& g, int64_t q_first, int64_t q_last) {
  using T = typename V::Scalar;
  using TL = Tile<V>;
  constexpr int64_t NR = TL::kNR;
  const int64_t full_panels = g.n / NR;
  // Panels per tile: as many as the widest row tile holds.
  const int group = TL::panels_for(static_cast<int>(std::min<int64_t>(TL::kMR, g.m)));
  T tail[kGemmKC * NR];
  T tile[TL::kTileSize];
  for (int64_t k0 = 0; k0 < g.k; k0 += kGemmKC) {
    const int64_t kc = std::min(kGemmKC, g.k - k0);
    const bool add = g.accumulate || k0 > 0;
    if (q_last > full_panels) {
      pack_panel<NR>(g.b, k0, kc, full_panels * NR, g.n - full_panels * NR, tail);
    }
    for (int64_t q = q_first; q < q_last;) {
      const bool in_place = q < full_panels;
      const int np = in_place ? static_cast<int>(std::min<int64_t>({group, q_last - q,
                                                                    full_panels - q}))
                              : 1;
      const T* b = in_place ? row_of(g.b, k0) + q * NR : tail;
      for (int64_t r0 = 0; r0 < g.m; r0 += TL::kMR) {
        const int mr = static_cast<int>(std::min<int64_t>(TL::kMR, g.m - r0));
        const LeftBlock<T> a = g.a_transposed
                                   ? LeftBlock<T>{g.a.data + k0 * g.a.ld + r0, 1, g.a.ld}
                                   : LeftBlock<T>{g.a.data + r0 * g.a.ld + k0, g.a.ld, 1};
        run_tile<V>(mr, np, kc, a, b, in_place ? g.b.ld : NR, in_place ? NR : kc * NR, tile,
                    np * NR);
        store_tile<V>(tile, np * NR, mr, std::min(np * NR, g.n - q * NR),
                      g.c + r0 * g.ldc + q * NR, g.ldc, add);
      }
      q += np;
    }
  }
}

template <typename V>
void gemm_nn(const GemmNN<typename V::Scalar>& g, int threads) {
  using T = typename V::Scalar;
  using TL = Tile<V>;
  // Column blocks of 2 KB of a row: a K block's packed B block (1 MiB) in
  // half of L2, for floats and doubles alike.
  constexpr int64_t kKC = kGemmKC, kMC = 96, kNC = 2048 / sizeof(T), NR = TL::kNR;
  // few_rows_product (B read in place) up to two row tiles, and up to a row
  // block where B's rows are at most 2 KB apart: at 4 KB (float64 H512,
  // float32 H1024 weights) the panels' rows alias in L1 and L2, and packing
  // wins from 16 rows; with rows of 1-2 KB reading in place stays ahead
  // (bench/results/cpu-xeon-avx512.md, "Thresholds of the engine").
  constexpr int64_t kMaxInPlaceRowBytes = 2048;
  const int64_t M = g.m, N = g.n, K = g.k;
  const bool b_in_place =
      M <= 2 * TL::kMR ||
      (M <= kMC && g.b.ld * static_cast<int64_t>(sizeof(T)) <= kMaxInPlaceRowBytes);
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (!g.accumulate) {
      for (int64_t i = 0; i < M; ++i) std::fill(g.c + i * g.ldc, g.c + i * g.ldc + N, T(0));
    }
    return;
  }
  const int team = product_team_size(threads, M, N, K);
  const int64_t col_panels = (N + NR - 1) / NR;
  if (b_in_place && g.b.rows == nullptr && !g.b_transposed && !g.b_panels) {
    auto few = [&](int tid, int members, SpinBarrier&) {
      const Slice mine = slice_of(col_panels, tid, members);
      few_rows_product<V>(g, mine.first, mine.last);
    };
    run_team(team, few);
    return;
  }
  // Rows split over the team where there are enough row blocks, else columns.
  const int64_t row_blocks = (M + kMC - 1) / kMC;
  // Rows are split where there are several blocks of them per member;
  // columns split in panels. A packed A (Sᵀ) would be packed whole by every
  // member of a column split.
  const bool split_rows = row_blocks >= (g.a_transposed ? 2 : 4) * team || col_panels < 2 * team;
  // Members that split rows share each packed block of B: they pack a part
  // each and meet at a barrier before and after the block's products.
  const bool share_b = split_rows && team > 1 && !g.b_panels;
  // Scratch no larger than the blocks: a product of a few k (a single
  // step's weight gradient) would otherwise fault in fresh pages per call.
  const int64_t block_cols = std::min(kNC, col_panels * NR), most_kc = std::min(kKC, K);
  Scratch<T> shared_b(share_b ? static_cast<size_t>(most_kc * block_cols) : 0);
  const bool pack_b = !g.b_panels;
  auto body = [&](int tid, int members, SpinBarrier& barrier) {
    // A row split hands out whole tiles of rows (balanced to one tile),
    // each member's in blocks of kMC.
    const int64_t row_tiles = (M + TL::kMR - 1) / TL::kMR;
    const Slice tiles = split_rows ? slice_of(row_tiles, tid, members) : Slice{0, row_tiles};
    const int64_t r_first = tiles.first * TL::kMR, r_last = std::min(M, tiles.last * TL::kMR);
    const Slice cols = split_rows ? Slice{0, col_panels} : slice_of(col_panels, tid, members);
    if (!share_b && (r_first >= r_last || cols.first >= cols.last)) return;
    const bool pack_a = g.a_transposed;
    Scratch<T> a_packed(pack_a ? static_cast<size_t>(packed_left_size(std::min(kMC, M), most_kc)) : 0);
    Scratch<T> own_b(share_b || !pack_b ? 0 : static_cast<size_t>(most_kc * std::min(kNC, (cols.last - cols.first) * NR)));
    T* b_packed = share_b ? shared_b.data() : own_b.data();
    for (int64_t n0 = cols.first * NR; n0 < std::min(N, cols.last * NR); n0 += kNC) {
      const int64_t ncols = std::min({kNC, N - n0, cols.last * NR - n0});
      const int64_t panels = (ncols + NR - 1) / NR;
      for (int64_t k0 = 0; k0 < K; k0 += kKC) {
        const int64_t kc = std::min(kKC, K - k0);
        const bool add = g.accumulate || k0 > 0;
        const Slice packs = !pack_b ? Slice{0, 0} : share_b ? slice_of(panels, tid, members) : Slice{0, panels};
        for (int64_t q = packs.first; q < packs.last; ++q) {
          const int64_t width = std::min(NR, ncols - q * NR);
          T* panel = b_packed + q * kc * NR;
          g.b_transposed ? pack_panel_transposed<NR>(g.b, k0, kc, n0 + q * NR, width, panel)
                         : pack_panel<NR>(g.b, k0, kc, n0 + q * NR, width, panel);
        }
        if (share_b) barrier.arrive_and_wait();  // the whole block packed
        for (int64_t i0 = r_first; i0 < r_last; i0 += kMC) {
          const int64_t mc = std::min(kMC, r_last - i0);
          if (pack_a) pack_transposed_left(g, i0, mc, k0, kc, a_packed.data());
          if (pack_b) {
            block_product<V>(g, a_packed.data(), !pack_a, i0, mc, k0, kc, b_packed, kc * NR, n0,
                             ncols, add);
          } else {
            block_product<V>(g, a_packed.data(), !pack_a, i0, mc, k0, kc,
                             g.b_panels + n0 * K + k0 * NR, K * NR, n0, ncols, add);
          }
        }
        if (share_b) barrier.arrive_and_wait();  // every product done with the block
      }
    }
  };
  run_team(team, body);
}

// C[MR rows][NC cols] (+)= dot products of MR rows of A with NC rows of W.
template <typename V, int MR, int NC>
void dot_tile(int64_t K, const typename V::Scalar* const* a, const typename V::Scalar* const* w,
              typename V::Scalar* c, int64_t ldc, bool add) {
  using T = typename V::Scalar;
  constexpr int W = V::kWidth;
  V acc[MR][NC];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 8
    for (int n = 0; n < NC; ++n) acc[r][n] = V(T(0));
  }
  auto step = [&](int64_t k, auto load) {
    V x[MR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) x[r] = load(a[r] + k);
#pragma GCC unroll 8
    for (int n = 0; n < NC; ++n) {
      const V y = load(w[n] + k);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) acc[r][n] = fma(x[r], y, acc[r][n]);
    }
  };
  int64_t k = 0;
#pragma GCC unroll 2
  for (; k + W <= K; k += W) step(k, [](const T* p) { return V::load(p); });
  if (k < K) {
    const int tail = static_cast<int>(K - k);
    step(k, [tail](const T* p) { return V::load_first(p, tail); });
  }
  constexpr int NC4 = (NC + 3) / 4 * 4;
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    V padded[NC4];
#pragma GCC unroll 8
    for (int n = 0; n < NC4; ++n) padded[n] = n < NC ? acc[r][n] : V(T(0));
    T sums[NC4];
#pragma GCC unroll 2
    for (int n = 0; n < NC4; n += 4) {
      sum_lanes4(padded[n], padded[n + 1], padded[n + 2], padded[n + 3], sums + n);
    }
#pragma GCC unroll 8
    for (int n = 0; n < NC; ++n) c[r * ldc + n] = add ? c[r * ldc + n] + sums[n] : sums[n];
  }
}

template <typename V>
using DotTileFn = void (*)(int64_t, const typename V::Scalar* const*,
                           const typename V::Scalar* const*, typename V::Scalar*, int64_t, bool);

// The dot tiles' shapes: one row against up to 8 columns, or up to kRows
// rows against up to kCols (more with 32 vector registers).
template <typename V>
struct DotShape {
  static constexpr int kRows = Tile<V>::kRegisters == 32 ? 4 : 3;
  static constexpr int kCols = Tile<V>::kRegisters == 32 ? 6 : 4;
  static constexpr int cols_for(int rows) { return rows == 1 ? 8 : kCols; }
};

template <typename V, int MR, int NC>
constexpr DotTileFn<V> dot_fn() {
  if constexpr (MR <= DotShape<V>::kRows && NC <= DotShape<V>::cols_for(MR)) {
    return dot_tile<V, MR, NC>;
  } else {
    return nullptr;
  }
}
template <typename V, int MR>
constexpr DotTileFn<V> kDotRow[8] = {dot_fn<V, MR, 1>(), dot_fn<V, MR, 2>(), dot_fn<V, MR, 3>(),
                                     dot_fn<V, MR, 4>(), dot_fn<V, MR, 5>(), dot_fn<V, MR, 6>(),
                                     dot_fn<V, MR, 7>(), dot_fn<V, MR, 8>()};
template <typename V>
constexpr const DotTileFn<V>* kDotTable[4] = {kDotRow<V, 1>, kDotRow<V, 2>, kDotRow<V, 3>,
                                              kDotRow<V, 4>};

// Rows [i0, i1) and columns [n0, n1) of C (+)= A . Wᵀ, a tile of columns at
// a time (a tile's W rows are read once per row of the block).
template <typename V>
void dot_block(const GemmNT<typename V::Scalar>& g, int64_t i0, int64_t i1, int64_t n0,
               int64_t n1) {
  using T = typename V::Scalar;
  using Shape = DotShape<V>;
  const int64_t tile_cols = g.m == 1 ? 8 : Shape::kCols;
  for (int64_t n = n0; n < n1; n += tile_cols) {
    const int nc = static_cast<int>(std::min(tile_cols, n1 - n));
    const T* w_rows[8];
    for (int j = 0; j < nc; ++j) w_rows[j] = row_of(g.w, n + j);
    for (int64_t i = i0; i < i1; i += Shape::kRows) {
      const int mr = static_cast<int>(std::min<int64_t>(Shape::kRows, i1 - i));
      const T* a_rows[Shape::kRows];
      for (int r = 0; r < mr; ++r) a_rows[r] = row_of(g.a, i + r);
      for (int j = 0; j < nc;) {
        const int cols = std::min(Shape::cols_for(mr), nc - j);
        kDotTable<V>[mr - 1][cols - 1](g.k, a_rows, w_rows + j, g.c + i * g.ldc + n + j,
                                       g.ldc, g.accumulate);
        j += cols;
      }
    }
  }
}

// Rows of A per block of the dot products: a block stays in L2.
constexpr int64_t kDotRowBlock = 96;

template <typename V>
void gemm_nt(const GemmNT<typename V::Scalar>& g, int threads) {
  // A block in L2, W block in L1/L2, whole tiles of columns per block.
  constexpr int64_t kMC = kDotRowBlock, kNC = 16 * DotShape<V>::kCols;
  const int64_t M = g.m, N = g.n, K = g.k;
  if (M == 0 || N == 0) return;
  const int team = product_team_size(threads, M, N, K);
  const int64_t row_blocks = (M + kMC - 1) / kMC, col_blocks = (N + kNC - 1) / kNC;
  const int64_t items = row_blocks * col_blocks;
  auto body = [&](int tid, int members, SpinBarrier&) {
    const Slice mine = slice_of(items, tid, members);
    for (int64_t item = mine.first; item < mine.last; ++item) {
      // Column blocks outer within a row block: a W block is read from L2
      // for every row of the A block.
      const int64_t i0 = (item % row_blocks) * kMC, n0 = (item / row_blocks) * kNC;
      dot_block<V>(g, i0, std::min(M, i0 + kMC), n0, std::min(N, n0 + kNC));
    }
  };
  run_team(team, body);
}

}  // namespace fastlstm::cpu::FASTLSTM_CPU_ISA
