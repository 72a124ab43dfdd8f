#include "gemm.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/native/CPUBlas.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace fastlstm::cpu {
namespace {

constexpr int64_t kTileCols = 64;          // one ukernel call: all K, 64 columns,
constexpr int64_t kTileRows = 256;         // of B's [K, 64] slice, reused from cache
constexpr int64_t kTileDepth = 512;        // K per call, so both operand blocks stay in L2
constexpr int64_t kMinTaskMacs = 1 << 15;  // below this a thread fork costs more
constexpr int64_t kMinPackedRows = 64;     // tiles at least this tall pack B's slice

at::Tensor view_of(const void* data, int64_t rows, int64_t cols, int64_t ld, at::ScalarType dt) {
  return at::from_blob(const_cast<void*>(data), {rows, cols}, {ld, 1},
                       at::TensorOptions().dtype(dt));
}

template <typename T>
void aten_gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb,
               T* C, int64_t ldc, bool accumulate) {
  constexpr auto dt = c10::CppTypeToScalarType<T>::value;
  at::Tensor c = view_of(C, M, N, ldc, dt);
  const at::Tensor a = view_of(A, M, K, lda, dt), b = view_of(B, K, N, ldb, dt);
  if (accumulate) {
    c.addmm_(a, b);
  } else {
    at::mm_out(c, a, b);
  }
}

// rows x cols of B (ldb) into a contiguous [rows, kTileCols] tile. A row
// stride of a power-of-two kilobytes maps every row of an unpacked tile to the
// same few L1 sets; packed, the tile streams through the cache.
void pack_rows(int64_t rows, int64_t cols, const float* B, int64_t ldb, float* tile) {
  for (int64_t k = 0; k < rows; ++k) {
    std::memcpy(tile + k * kTileCols, B + k * ldb, cols * sizeof(float));
  }
}

bool probe_brgemm() {
  const char* forced = std::getenv("FASTLSTM_CPU_GEMM");
  if (forced && std::strcmp(forced, "aten") == 0) return false;
  try {
    float a = 1.f, b[16] = {}, c[16] = {};
    at::native::cpublas::brgemm(1, 16, 1, 1, 16, 16, false, &a, b, c, false);
    at::native::cpublas::brgemm_release(false);
    return true;
  } catch (const c10::Error&) {
    return false;  // this CPU or torch build has no fp32 ukernel
  }
}

}  // namespace

bool gemm_uses_brgemm() {
  static const bool available = probe_brgemm();
  return available;
}

template <>
void gemm<double>(int64_t M, int64_t N, int64_t K, const double* A, int64_t lda, const double* B,
                  int64_t ldb, double* C, int64_t ldc, bool accumulate) {
  aten_gemm(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

template <>
void gemm<float>(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                 int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  if (M == 0 || N == 0) return;
  if (!gemm_uses_brgemm() || K == 0) {
    aten_gemm(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
    return;
  }
  // Work too small to share gets one ukernel call per row tile: each call has
  // a fixed cost (kernel lookup), and all of them would run on one thread.
  const int64_t tile_cols = M * K * N < 2 * kMinTaskMacs ? N : kTileCols;
  const int64_t col_tiles = (N + tile_cols - 1) / tile_cols;
  const int64_t row_tiles = (M + kTileRows - 1) / kTileRows;
  const int64_t tile_macs = std::min(M, kTileRows) * K * tile_cols;  // all K blocks
  const int64_t grain = std::max<int64_t>(1, kMinTaskMacs / tile_macs);
  // Column-major tile order: a thread's consecutive tiles share B's slice.
  // Tall tiles read B's slice often enough to pay for packing it (pack_rows).
  const bool pack_b = tile_cols == kTileCols && std::min(M, kTileRows) >= kMinPackedRows;
  at::parallel_for(0, col_tiles * row_tiles, grain, [&](int64_t begin, int64_t end) {
    std::vector<float> b_tile(pack_b ? kTileDepth * kTileCols : 0);
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t row = (tile % row_tiles) * kTileRows, col = (tile / row_tiles) * tile_cols;
      const int64_t rows = std::min(kTileRows, M - row), cols = std::min(tile_cols, N - col);
      // K blocks in a fixed order: the sum does not depend on the split over threads.
      for (int64_t k = 0; k < K; k += kTileDepth) {
        const int64_t depth = std::min(kTileDepth, K - k);
        const float* b = B + k * ldb + col;
        if (pack_b) pack_rows(depth, cols, b, ldb, b_tile.data());
        at::native::cpublas::brgemm(rows, cols, depth, lda, pack_b ? kTileCols : ldb, ldc,
                                    accumulate || k > 0, A + row * lda + k,
                                    pack_b ? b_tile.data() : b, C + row * ldc + col, false);
      }
    }
    at::native::cpublas::brgemm_release(false);
  });
}

template <>
void gemm_a_t<double>(int64_t M, int64_t K, const double* A, int64_t lda,
                      const RightOperand<double>* products, int count) {
  for (int i = 0; i < count; ++i) {
    const RightOperand<double>& p = products[i];
    at::Tensor c = view_of(p.c, M, p.cols, p.ldc, at::kDouble);
    at::mm_out(c, view_of(A, K, M, lda, at::kDouble).t(),
               view_of(p.b, K, p.cols, p.ldb, at::kDouble));
  }
}

template <>
void gemm_a_t<float>(int64_t M, int64_t K, const float* A, int64_t lda,
                     const RightOperand<float>* products, int count) {
  if (M == 0) return;
  if (!gemm_uses_brgemm() || K == 0) {
    for (int i = 0; i < count; ++i) {
      const RightOperand<float>& p = products[i];
      at::Tensor c = view_of(p.c, M, p.cols, p.ldc, at::kFloat);
      at::mm_out(c, view_of(A, K, M, lda, at::kFloat).t(),
                 view_of(p.b, K, p.cols, p.ldb, at::kFloat));
    }
    return;
  }
  constexpr int64_t kRows = 128, kDepth = 256;  // one transposed block: 128 KiB
  const int64_t row_tiles = (M + kRows - 1) / kRows;
  at::parallel_for(0, row_tiles, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> block(kRows * kDepth), b_tile(kDepth * kTileCols);
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t row = tile * kRows, rows = std::min(kRows, M - row);
      for (int64_t k0 = 0; k0 < K; k0 += kDepth) {
        const int64_t depth = std::min(kDepth, K - k0);
        // In 16 x 16 squares, so that both sides of the transpose stay in L1.
        for (int64_t kb = 0; kb < depth; kb += 16) {
          for (int64_t rb = 0; rb < rows; rb += 16) {
            const int64_t k_end = std::min(depth, kb + 16), r_end = std::min(rows, rb + 16);
            for (int64_t k = kb; k < k_end; ++k) {
              const float* src = A + (k0 + k) * lda + row;
              for (int64_t r = rb; r < r_end; ++r) block[r * kDepth + k] = src[r];
            }
          }
        }
        for (int i = 0; i < count; ++i) {
          const RightOperand<float>& p = products[i];
          for (int64_t col = 0; col < p.cols; col += kTileCols) {
            const int64_t cols = std::min(kTileCols, p.cols - col);
            pack_rows(depth, cols, p.b + k0 * p.ldb + col, p.ldb, b_tile.data());
            at::native::cpublas::brgemm(rows, cols, depth, kDepth, kTileCols, p.ldc, k0 > 0,
                                        block.data(), b_tile.data(), p.c + row * p.ldc + col,
                                        false);
          }
        }
      }
    }
    at::native::cpublas::brgemm_release(false);
  });
}

template <typename T>
void gemm_weight_t(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const at::Tensor& w,
                   const at::Tensor& w_t, T* C, int64_t ldc, bool accumulate) {
  if (w_t.defined()) {
    gemm<T>(M, N, K, A, lda, w_t.data_ptr<T>(), N, C, ldc, accumulate);
    return;
  }
  constexpr auto dt = c10::CppTypeToScalarType<T>::value;
  at::Tensor c = view_of(C, M, N, ldc, dt);
  const at::Tensor a = view_of(A, M, K, lda, dt);
  if (accumulate) {
    c.addmm_(a, w.t());
  } else {
    at::mm_out(c, a, w.t());
  }
}

template void gemm_weight_t<float>(int64_t, int64_t, int64_t, const float*, int64_t,
                                   const at::Tensor&, const at::Tensor&, float*, int64_t, bool);
template void gemm_weight_t<double>(int64_t, int64_t, int64_t, const double*, int64_t,
                                    const at::Tensor&, const at::Tensor&, double*, int64_t, bool);

}  // namespace fastlstm::cpu
