#include "gemm.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/native/CPUBlas.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace fastlstm::cpu {
namespace {

constexpr int64_t kTileCols = 64;          // one ukernel call: all K, 64 columns,
constexpr int64_t kTileRows = 256;         // of B's [K, 64] slice, reused from cache
constexpr int64_t kTileDepth = 512;        // K per call, so both operand blocks stay in L2
constexpr int64_t kMinTaskMacs = 1 << 15;  // below this a thread fork costs more

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
  at::parallel_for(0, col_tiles * row_tiles, grain, [&](int64_t begin, int64_t end) {
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t row = (tile % row_tiles) * kTileRows, col = (tile / row_tiles) * tile_cols;
      const int64_t rows = std::min(kTileRows, M - row), cols = std::min(tile_cols, N - col);
      // K blocks in a fixed order: the sum does not depend on the split over threads.
      for (int64_t k = 0; k < K; k += kTileDepth) {
        at::native::cpublas::brgemm(rows, cols, std::min(kTileDepth, K - k), lda, ldb, ldc,
                                    accumulate || k > 0, A + row * lda + k, B + k * ldb + col,
                                    C + row * ldc + col, false);
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
