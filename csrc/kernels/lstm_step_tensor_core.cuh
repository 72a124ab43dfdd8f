// Tensor Core variants of the step kernels for half and bfloat16 storage:
// the recurrent products run on WMMA 16x16x16 fragments with float
// accumulation; the gate math, the cell state and the workspace stay in
// float, through the same epilogue and gate-gradient code as the scalar
// kernels. They need H and P to be multiples of 16 and W_hh 32-byte
// aligned; the glue checks and otherwise uses the scalar kernels.
//
// Forward: a block owns 16 units x 16 rows; warp g computes gate g's tile
// h_{t-1}[rows, :] W_hh[g*H + units, :]ᵀ, reading W_hh straight from global
// memory (L2) as a column-major B operand, h from a shared staging tile.
// Backward: a block owns 16 rows x 64 columns of dh_{t-1}; for each chunk of
// 16 units it computes their gate gradients into shared memory (rounded to
// the storage type, as dgates is stored), then each warp multiplies the four
// gates' 16x16 slices by the matching W_hh rows for its 16 columns.
#pragma once

#include "kernel_prelude.cuh"

#include "lstm_step_backward.cuh"
#include "lstm_step_forward.cuh"

namespace fastlstm {

template <typename T>
struct CudaStorage;
template <>
struct CudaStorage<half_t> {
  using type = __half;
};
template <>
struct CudaStorage<bfloat16_t> {
  using type = __nv_bfloat16;
};
template <typename T>
using cuda_t = typename CudaStorage<T>::type;

template <typename T, bool kSaveWorkspace>
__global__ void __launch_bounds__(TensorCoreTile::kThreads)
lstm_forward_step_tensor_core(ForwardStepParams<T> p) {
  namespace wmma = nvcuda::wmma;
  using CT = cuda_t<T>;
  constexpr int kTile = TensorCoreTile::kTile, kThreads = TensorCoreTile::kThreads;
  constexpr int kStage = 64, kStride = kStage + 8;  // WMMA wants ldm % 8 == 0
  __shared__ __align__(32) T h_tile[kTile][kStride];
  __shared__ __align__(32) float gate_tile[kNumGates][kTile][kTile];

  const int tid = threadIdx.x, gate = tid / 32;
  const int unit0 = blockIdx.x * kTile, row0 = blockIdx.y * kTile;
  const int H = p.hidden, P = p.proj;
  const CT* w = reinterpret_cast<const CT*>(p.w_hh) + (size_t)(gate * H + unit0) * P;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
  wmma::fill_fragment(acc, 0.0f);
  for (int k0 = 0; k0 < P; k0 += kStage) {
    for (int e = tid; e < kTile * kStage; e += kThreads) {
      const int r = e / kStage, k = k0 + e % kStage, b = row0 + r;
      T v = {};
      if (b < p.rows && k < P) v = b < p.carried ? p.h_prev[(size_t)b * P + k] : p.h0[(size_t)b * P + k];
      h_tile[r][e % kStage] = v;
    }
    __syncthreads();
    const int depth = min(kStage, P - k0);
    for (int kk = 0; kk < depth; kk += kTile) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, CT, wmma::row_major> a;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, CT, wmma::col_major> b;
      wmma::load_matrix_sync(a, reinterpret_cast<const CT*>(&h_tile[0][kk]), kStride);
      wmma::load_matrix_sync(b, w + k0 + kk, P);
      wmma::mma_sync(acc, a, b, acc);
    }
    __syncthreads();  // the next pass overwrites the staging tile
  }
  wmma::store_matrix_sync(&gate_tile[gate][0][0], acc, kTile, wmma::mem_row_major);
  __syncthreads();
  for (int e = tid; e < kTile * kTile; e += kThreads) {
    const int r = e / kTile, u = e % kTile, b = row0 + r, j = unit0 + u;
    if (b >= p.rows) continue;
    const float recurrent[kNumGates] = {gate_tile[0][r][u], gate_tile[1][r][u], gate_tile[2][r][u],
                                        gate_tile[3][r][u]};
    finish_forward_cell<T, kSaveWorkspace>(p, b, j, recurrent);
  }
}

template <typename T>
__global__ void __launch_bounds__(TensorCoreTile::kThreads)
lstm_backward_step_tensor_core(BackwardStepParams<T> p) {
  namespace wmma = nvcuda::wmma;
  using CT = cuda_t<T>;
  constexpr int kTile = TensorCoreTile::kTile, kThreads = TensorCoreTile::kThreads;
  constexpr int kCols = TensorCoreTile::kCols, kStride = kNumGates * kTile + 8;
  __shared__ __align__(32) T dgate_tile[kTile][kStride];  // column = gate * 16 + unit
  __shared__ __align__(32) float dh_tile[kTile][kCols];

  const int tid = threadIdx.x, warp = tid / 32;
  const int row0 = blockIdx.y * kTile, block_col0 = blockIdx.x * kCols;
  const int warp_col0 = block_col0 + warp * kTile;
  const int H = p.hidden, P = p.proj;
  const bool warp_has_columns = warp_col0 < P;  // P % 16 == 0: all or none of its 16
  const bool stores_dgates = blockIdx.x == 0;
  const CT* w = reinterpret_cast<const CT*>(p.w_hh);
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
  wmma::fill_fragment(acc, 0.0f);
  for (int j0 = 0; j0 < H; j0 += kTile) {
    for (int e = tid; e < kTile * kTile; e += kThreads) {
      const int r = e / kTile, u = e % kTile, b = row0 + r, j = j0 + u;
      CellGrad<float> d = {};
      if (b < p.rows) {
        d = step_cell_grad(p, b, j);
        if (stores_dgates) {
          store_gate_grads(p.dgates + (size_t)b * kNumGates * H + j, d, H);
          p.dc_prev[(size_t)b * H + j] = d.dc_prev;
        }
      }
      dgate_tile[r][kGateI * kTile + u] = from_acc<T>(d.di);
      dgate_tile[r][kGateF * kTile + u] = from_acc<T>(d.df);
      dgate_tile[r][kGateG * kTile + u] = from_acc<T>(d.dg);
      dgate_tile[r][kGateO * kTile + u] = from_acc<T>(d.do_);
    }
    __syncthreads();
    if (warp_has_columns) {
      for (int g = 0; g < kNumGates; ++g) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, CT, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, CT, wmma::row_major> b;
        wmma::load_matrix_sync(a, reinterpret_cast<const CT*>(&dgate_tile[0][g * kTile]), kStride);
        wmma::load_matrix_sync(b, w + (size_t)(g * H + j0) * P + warp_col0, P);
        wmma::mma_sync(acc, a, b, acc);
      }
    }
    __syncthreads();  // the next chunk overwrites the gradient tile
  }
  if (warp_has_columns) {
    wmma::store_matrix_sync(&dh_tile[0][warp * kTile], acc, kCols, wmma::mem_row_major);
  }
  __syncthreads();
  for (int e = tid; e < kTile * kCols; e += kThreads) {
    const int r = e / kCols, c = block_col0 + e % kCols, b = row0 + r;
    if (b < p.rows && c < P) p.dh_prev[(size_t)b * P + c] = dh_tile[r][e % kCols];
  }
}

}  // namespace fastlstm
