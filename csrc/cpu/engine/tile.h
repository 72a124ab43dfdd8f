// The register tile every product of the CPU engine is made of, and the
// packing of its right operand.
//
// tile[MR][NP * NR] = A[MR, K] . B[K, NP * NR]: A read in place (each value
// broadcast to a vector), B as NP panels of NR = 2 vectors per k. Each output element is one chain of fused
// multiply-adds over k in increasing order, starting from zero, whichever
// tile shape computes it: results do not depend on how rows and columns are
// blocked, nor on which thread owns them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

#include "../engine.h"
#include "vec.h"

namespace fastlstm::cpu::FASTLSTM_CPU_ISA {

// Team size for `work` multiply-adds (or copies): never more than
// `threads`, and no team for work that a fork and join would dominate.
inline int team_size(int threads, int64_t work) {
  constexpr int64_t kMinTaskWork = int64_t{1} << 17;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, work / kMinTaskWork)));
}

// The same for a product C [M, N] = A [M, K] B [K, N]: each element of C
// counts as at least kStoreWork multiply-adds, for its store. At small K (a
// single step's weight gradients, K = batch) the writes are the work; split
// over the team, each core's half of C stays in its own cache for the
// autograd sum that reads it next, split the same way.
inline int product_team_size(int threads, int64_t m, int64_t n, int64_t k) {
  constexpr int64_t kStoreWork = 4;
  return team_size(threads, m * n * std::max(k, kStoreWork));
}

// The same for a recurrence, from the work of one step: its team is forked
// once for all steps, and meets at a barrier (a few hundred nanoseconds)
// per step.
inline int recurrence_team_size(int threads, int64_t step_work) {
  constexpr int64_t kMinStepWork = int64_t{1} << 15;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, step_work / kMinStepWork)));
}

// Scratch memory of a call, left uninitialized (a vector would clear it).
template <typename T>
class Scratch {
 public:
  explicit Scratch(size_t n) : data_(new T[n]) {}
  T* data() { return data_.get(); }

 private:
  std::unique_ptr<T[]> data_;
};

template <typename T>
inline const T* row_of(const Matrix<T>& m, int64_t i) {
  return m.rows ? m.rows[i] : m.data + i * m.ld;
}

constexpr int kTileRows = 6;  // most rows of one tile

template <typename V>
struct Tile {
  using T = typename V::Scalar;
  static constexpr int kW = V::kWidth;
  static constexpr int kNR = 2 * kW;  // columns of one B panel
  static constexpr int kMR = kTileRows;
  static constexpr int kTileSize = kMR * 4 * kNR;  // the largest tile, in elements
  // Vector registers: 32 where vectors are 64 bytes (AVX-512), else 16.
  static constexpr int kRegisters = sizeof(T) * kW == 64 ? 32 : 16;
  // Panels per tile by rows: with 16 registers 12 or fewer accumulators;
  // with 32, the accumulators and one k's B vectors in 30 of them.
  static constexpr int panels_for(int rows) {
    if (kRegisters == 16) return rows == 1 ? 4 : rows == 2 ? 3 : rows == 3 ? 2 : 1;
    return std::min(4, 15 / (rows + 1));
  }
};

// A block of rows of the left operand as the tile reads it in place:
// element (r, k) at data[r * row_stride + k * k_stride]. Rows of a row-major
// matrix have k_stride 1; A = Sᵀ for a row-major S has row_stride 1 and
// k_stride S's leading dimension.
template <typename T>
struct LeftBlock {
  const T* data;
  int64_t row_stride, k_stride;
};

// tile[r * ld_tile + j] = sum_k A(r, k) B(k, j) for r < MR, j < NP * NR;
// B panel p has row k at b + p * panel_stride + k * ldb.
// How a tile's left operand lies: rows of a row-major matrix (k stride 1),
// packed [K][MR] (a block of A = Sᵀ copied for the GEMM), or any strides.
enum class LeftLayout { kRows, kPacked, kStrided };

// With `continued`, the sums go on from the tile's values (the next K block
// of the same products): each element is still one FMA chain over k.
template <typename V, int MR, int NP, LeftLayout kLayout>
void tile_product(int64_t K, LeftBlock<typename V::Scalar> a,
                  const typename V::Scalar* __restrict b, int64_t ldb, int64_t panel_stride,
                  typename V::Scalar* __restrict tile, int64_t ld_tile, bool continued) {
  using T = typename V::Scalar;
  constexpr int W = V::kWidth, NV = 2 * NP;
  const T* rows[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) rows[r] = a.data + r * a.row_stride;
  const int64_t ks = kLayout == LeftLayout::kRows ? 1 : a.k_stride;
  V acc[MR][NV];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      acc[r][v] = continued ? V::load(tile + r * ld_tile + v * W) : V(T(0));
    }
  }
#pragma GCC unroll 4
  for (int64_t k = 0; k < K; ++k) {
    V bv[NV];
#pragma GCC unroll 8
    for (int p = 0; p < NP; ++p) {
      bv[2 * p] = V::load(b + p * panel_stride + k * ldb);
      bv[2 * p + 1] = V::load(b + p * panel_stride + k * ldb + W);
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const V x(kLayout == LeftLayout::kPacked ? a.data[k * MR + r] : rows[r][k * ks]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] = fma(x, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v].store(tile + r * ld_tile + v * W);
  }
}

template <typename V>
using TileFn = void (*)(int64_t, LeftBlock<typename V::Scalar>, const typename V::Scalar*,
                        int64_t, int64_t, typename V::Scalar*, int64_t, bool);

template <typename V, LeftLayout L, int MR, int NP>
constexpr TileFn<V> tile_fn() {
  if constexpr (NP <= Tile<V>::panels_for(MR)) {
    return tile_product<V, MR, NP, L>;
  } else {
    return nullptr;
  }
}
template <typename V, LeftLayout L, int MR>
constexpr TileFn<V> kTileRow[4] = {tile_fn<V, L, MR, 1>(), tile_fn<V, L, MR, 2>(),
                                   tile_fn<V, L, MR, 3>(), tile_fn<V, L, MR, 4>()};
template <typename V, LeftLayout L>
constexpr const TileFn<V>* kTileTable[6] = {kTileRow<V, L, 1>, kTileRow<V, L, 2>, kTileRow<V, L, 3>,
                                            kTileRow<V, L, 4>, kTileRow<V, L, 5>, kTileRow<V, L, 6>};

// One tile of `rows` rows (1..6) over `panels` panels (1..panels_for(rows)).
// A block with row stride 1 and k stride `rows` is a packed block.
template <typename V>
void run_tile(int rows, int panels, int64_t K, LeftBlock<typename V::Scalar> a,
              const typename V::Scalar* b, int64_t ldb, int64_t panel_stride,
              typename V::Scalar* tile, int64_t ld_tile, bool continued = false) {
  const TileFn<V> fn =
      a.k_stride == 1 ? kTileTable<V, LeftLayout::kRows>[rows - 1][panels - 1]
      : a.row_stride == 1 && a.k_stride == rows
          ? kTileTable<V, LeftLayout::kPacked>[rows - 1][panels - 1]
          : kTileTable<V, LeftLayout::kStrided>[rows - 1][panels - 1];
  fn(K, a, b, ldb, panel_stride, tile, ld_tile, continued);
}

// K per block of the recurrences' products: a block of the panels one tile
// reads stays in L1 (AVX2) or L2 while every row block of the step passes
// over it (256 and 128 measured the same with 32-register tiles).
constexpr int64_t kRecurrentKC = 256;

// tile[r * ld_tile + p * NR + j] = sum_k A(r, k) B(k, p * NR + j) for rows
// [0, rows) and panels [0, panels): panel p at b + p * panel_stride, its
// row k at + k * ldb (panels.h's groups), K blocked so that each block of
// panels is read from L1 by every row block. left(r0, k0) is A's rows
// [r0, r0 + 6) from column k0 on.
// With `continued`, the sums go on from the tile's values (a product with
// a second operand pair, as [x_t | h_{t-1}] . [W_ih ; W_hh]).
template <typename V, typename Left>
void blocked_tiles(int64_t rows, int64_t K, const Left& left, const typename V::Scalar* b,
                   int64_t ldb, int64_t panel_stride, int panels, typename V::Scalar* tile,
                   int64_t ld_tile, bool continued = false) {
  constexpr int MR = Tile<V>::kMR, NR = Tile<V>::kNR;
  constexpr int64_t KC = kRecurrentKC;
  const int64_t full = rows / MR * MR;
  const int tail = static_cast<int>(rows - full);
  for (int64_t k0 = 0; k0 < K; k0 += KC) {
    const int64_t kc = std::min(KC, K - k0);
    const auto* bk = b + k0 * ldb;
    for (int p = 0; p < panels;) {
      const int np = std::min(Tile<V>::panels_for(MR), panels - p);
      for (int64_t r0 = 0; r0 < full; r0 += MR) {
        run_tile<V>(MR, np, kc, left(r0, k0), bk + p * panel_stride, ldb, panel_stride,
                    tile + r0 * ld_tile + p * NR, ld_tile, continued || k0 > 0);
      }
      p += np;
    }
    // The tail's tiles split the panels evenly (no single-panel leftover).
    int tail_panels = std::min(Tile<V>::panels_for(tail), panels);
    while (panels % tail_panels != 0) --tail_panels;
    for (int p = 0; tail > 0 && p < panels;) {
      const int np = tail_panels;
      run_tile<V>(tail, np, kc, left(full, k0), bk + p * panel_stride, ldb, panel_stride,
                  tile + full * ld_tile + p * NR, ld_tile, continued || k0 > 0);
      p += np;
    }
  }
}

// Columns [n0, n0 + cols) (cols <= NR) of rows [k0, k0 + kc) of B into a
// panel [kc][NR], zero past cols.
template <int NR, typename T>
void pack_panel(const Matrix<T>& b, int64_t k0, int64_t kc, int64_t n0, int64_t cols, T* out) {
  for (int64_t k = 0; k < kc; ++k) {
    T* dst = out + k * NR;
    const T* src = row_of(b, k0 + k) + n0;
    if (cols == NR) {
      // One copy of a whole row of the panel (element by element, the
      // compiler keeps scalar moves: it cannot rule out that they overlap).
      std::memcpy(dst, src, sizeof(T) * NR);
    } else {
      for (int c = 0; c < NR; ++c) dst[c] = c < cols ? src[c] : T(0);
    }
  }
}

// The panel of B = Wᵀ, for W [N, K] given by rows: columns [n0, n0 + cols)
// of B are rows of W. Row by row of the panel, so that its writes run in
// order (a panel is larger than L1) while the cols lines read from W serve
// 64 bytes of k each.
template <int NR, typename T>
void pack_panel_transposed(const Matrix<T>& w, int64_t k0, int64_t kc, int64_t n0, int64_t cols,
                           T* out) {
  const T* src[NR];
  for (int64_t c = 0; c < cols; ++c) src[c] = row_of(w, n0 + c) + k0;
  if (cols == NR) {
    for (int64_t k = 0; k < kc; ++k) {
#pragma GCC unroll 16
      for (int c = 0; c < NR; ++c) out[k * NR + c] = src[c][k];
    }
    return;
  }
  for (int64_t k = 0; k < kc; ++k) {
    for (int c = 0; c < NR; ++c) out[k * NR + c] = c < cols ? src[c][k] : T(0);
  }
}

// tile (rows x cols of a [rows][ld_tile] tile) stored into, or added to, C.
template <typename V>
void store_tile(const typename V::Scalar* tile, int64_t ld_tile, int rows, int64_t cols,
                typename V::Scalar* c, int64_t ldc, bool add) {
  constexpr int W = V::kWidth;
  for (int r = 0; r < rows; ++r) {
    const typename V::Scalar* src = tile + r * ld_tile;
    typename V::Scalar* dst = c + r * ldc;
    int64_t j = 0;
    for (; j + W <= cols; j += W) {
      const V x = V::load(src + j);
      (add ? V::load(dst + j) + x : x).store(dst + j);
    }
    if (j < cols) {
      const int n = static_cast<int>(cols - j);
      const V x = V::load(src + j);
      (add ? V::load_first(dst + j, n) + x : x).store_first(dst + j, n);
    }
  }
}

}  // namespace fastlstm::cpu::FASTLSTM_CPU_ISA
