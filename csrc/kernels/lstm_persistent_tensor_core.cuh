// The persistent kernels with their recurrent products on Tensor Cores
// (half/bfloat16 storage, H a multiple of 16). As in the scalar ones, a
// block owns `units` hidden units and keeps its slice of W_hh in shared
// memory for the whole launch, here in the storage type and padded to whole
// 16-wide WMMA tiles; each warp computes a 16-row tile of the product on
// WMMA 16x16x16 fragments, and the results go through shared memory to the
// same per-cell code as the scalar kernels.
//   forward:  h_{t-1} W_sliceᵀ, W_slice = the 4U gate rows of its units;
//   backward: dgates_t W_hh[:, units] (phase B; phase A is the scalar one).
#pragma once

#include "kernel_prelude.cuh"

#include "lstm_persistent_backward.cuh"
#include "lstm_persistent_forward.cuh"
#include "lstm_step_tensor_core.cuh"

namespace fastlstm {

// Most WMMA accumulator tiles a warp holds: 4U <= 4 * kMaxUnits gate rows
// forwards, U <= kMaxUnits columns backwards.
constexpr int kMaxGateTiles = 4 * PersistentTile::kMaxUnits / 16;
constexpr int kMaxUnitTiles = PersistentTile::kMaxUnits / 16;

// One row pass of a persistent Tensor Core kernel: out[r][c] = the sum over
// k < depth of A[row0 + r][k] * slice[c][k], for the kRows rows of the pass
// and the tiles * 16 rows of the block's slice ([tiles * 16][slice_stride],
// storage type, in shared memory). A's rows come through load_a(b, k), zero
// past `rows`, staged kStage columns at a time; warp w multiplies rows
// 16w.. on WMMA fragments. out is [kRows][tiles * 16] float, shared.
template <typename T, int kMaxTiles, typename LoadA>
__device__ __forceinline__ void rows_times_slice(int row0, int rows, int depth, LoadA&& load_a,
                                                 const T* slice, int slice_stride, int tiles,
                                                 T* stage, float* out) {
  namespace wmma = nvcuda::wmma;
  using CT = cuda_t<T>;
  constexpr int kThreads = PersistentTile::kThreads, kRows = PersistentTile::kTensorRows;
  constexpr int kStage = PersistentTile::kTensorStage, kStride = kStage + 8;
  const int tid = threadIdx.x, warp = tid / 32;
  const bool warp_has_rows = row0 + warp * 16 < rows;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kMaxTiles];
  for (int t = 0; t < tiles; ++t) wmma::fill_fragment(acc[t], 0.0f);
  for (int k0 = 0; k0 < depth; k0 += kStage) {
    for (int e = tid; e < kRows * kStage; e += kThreads) {
      const int r = e / kStage, k = k0 + e % kStage, b = row0 + r;
      T v = {};
      if (b < rows && k < depth) v = load_a(b, k);
      stage[r * kStride + e % kStage] = v;
    }
    __syncthreads();
    if (warp_has_rows) {
      for (int kk = 0; kk < kStage && k0 + kk < depth; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, CT, wmma::row_major> a;
        wmma::load_matrix_sync(a, reinterpret_cast<const CT*>(stage + warp * 16 * kStride + kk),
                               kStride);
        for (int t = 0; t < tiles; ++t) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, CT, wmma::col_major> b;
          wmma::load_matrix_sync(
              b, reinterpret_cast<const CT*>(slice + (size_t)t * 16 * slice_stride + k0 + kk),
              slice_stride);
          wmma::mma_sync(acc[t], a, b, acc[t]);
        }
      }
    }
    __syncthreads();  // the next pass overwrites the staging tile
  }
  if (warp_has_rows) {
    for (int t = 0; t < tiles; ++t) {
      wmma::store_matrix_sync(out + warp * 16 * tiles * 16 + t * 16, acc[t], tiles * 16,
                              wmma::mem_row_major);
    }
  }
  __syncthreads();
}

template <typename T, bool kSaveWorkspace>
__global__ void __launch_bounds__(PersistentTile::kThreads, 1)
lstm_forward_persistent_tensor_core(PersistentForwardParams<T> p) {
  constexpr int kThreads = PersistentTile::kThreads, kRows = PersistentTile::kTensorRows;
  constexpr int kStride = PersistentTile::kTensorStage + 8;
  FASTLSTM_DYNAMIC_SHARED(unsigned char, shared_bytes);
  const int H = p.hidden, U = p.units, gate_rows = PersistentTile::padded_gate_rows(U);
  const int tiles = gate_rows / 16, w_stride = H + 8;
  T* w_slice = reinterpret_cast<T*>(shared_bytes);             // [gate_rows][H + 8]: g*U + u
  T* h_stage = w_slice + (size_t)gate_rows * w_stride;          // [kRows][kStride]
  float* gate_stage = reinterpret_cast<float*>(h_stage + kRows * kStride);  // [kRows][gate_rows]
  float* c_units = gate_stage + kRows * gate_rows;              // [B][U]

  const int tid = threadIdx.x, j0 = blockIdx.x * U;
  const cooperative_groups::grid_group grid = cooperative_groups::this_grid();
  for (int e = tid; e < gate_rows * H; e += kThreads) {
    const int r = e / H, k = e % H, j = j0 + r % U;
    T w = {};
    if (r < 4 * U && j < H) w = p.w_hh[(size_t)((r / U) * H + j) * H + k];
    w_slice[(size_t)r * w_stride + k] = w;
  }
  load_unit_cells(p, j0, c_units);
  __syncthreads();

  for (int k = p.k_begin; k < p.k_end; ++k) {
    const ScheduledStep step = scheduled_step(p.sched, k);
    const T* h_prev = step.prev >= 0 ? p.output + (size_t)step.prev * H : nullptr;
    const auto h_of = [&](int b, int col) {
      return b < step.carried ? h_prev[(size_t)b * H + col] : p.h0[(size_t)b * H + col];
    };
    for (int row0 = 0; row0 < step.rows; row0 += kRows) {
      rows_times_slice<T, kMaxGateTiles>(row0, step.rows, H, h_of, w_slice, w_stride, tiles,
                                         h_stage, gate_stage);
      for (int e = tid; e < kRows * U; e += kThreads) {
        const int r = e / U, u = e % U, b = row0 + r, j = j0 + u;
        if (b >= step.rows || j >= H) continue;
        const float* g = gate_stage + r * gate_rows + u;
        float pre[kNumGates];
        load_pre_x(p, step, b, j, pre);
        for (int gate = 0; gate < kNumGates; ++gate) pre[gate] += g[gate * U];
        finish_persistent_cell<T, kSaveWorkspace>(p, step, b, j, pre, c_units[b * U + u]);
      }
      __syncthreads();  // the next pass overwrites the gate tiles
    }
    // h_t of every block is written before any block reads it as h_{t-1}.
    grid.sync();
  }
  store_unit_cells(p, j0, c_units);
}

template <typename T>
__global__ void __launch_bounds__(PersistentTile::kThreads, 1)
lstm_backward_persistent_tensor_core(PersistentBackwardParams<T> p) {
  constexpr int kThreads = PersistentTile::kThreads, kRows = PersistentTile::kTensorRows;
  constexpr int kStride = PersistentTile::kTensorStage + 8;
  FASTLSTM_DYNAMIC_SHARED(unsigned char, shared_bytes);
  const int H = p.hidden, U = p.units, depth_total = kNumGates * H;
  const int unit_cols = PersistentTile::padded_units(U), tiles = unit_cols / 16;
  const int w_stride = depth_total + 8;
  T* w_slice = reinterpret_cast<T*>(shared_bytes);       // [unit_cols][4H + 8]: W_hh[n, j0 + u]
  T* dg_stage = w_slice + (size_t)unit_cols * w_stride;   // [kRows][kStride]
  float* dh_stage = reinterpret_cast<float*>(dg_stage + kRows * kStride);  // [kRows][unit_cols]
  float* dh_units = dh_stage + kRows * unit_cols;         // [B][U]
  float* dc_units = dh_units + p.batch * U;               // [B][U]

  const int tid = threadIdx.x, j0 = blockIdx.x * U;
  const cooperative_groups::grid_group grid = cooperative_groups::this_grid();
  for (int e = tid; e < unit_cols * depth_total; e += kThreads) {
    const int u = e / depth_total, n = e % depth_total, j = j0 + u;
    T w = {};
    if (u < U && j < H) w = p.w_hh[(size_t)n * H + j];
    w_slice[(size_t)u * w_stride + n] = w;
  }
  load_unit_grads(p, j0, 0, p.batch, dh_units, dc_units);
  __syncthreads();

  for (int k = p.sched.steps - 1; k >= 0; --k) {
    const ScheduledStep step = scheduled_step(p.sched, k);
    unit_gate_grads(p, step, j0, 0, step.rows, dh_units, dc_units);  // A
    grid.sync();
    const T* dgates_step = p.dgates + (size_t)step.offset * depth_total;
    const auto dgates_of = [&](int b, int n) { return dgates_step[(size_t)b * depth_total + n]; };
    for (int row0 = 0; row0 < step.rows; row0 += kRows) {  // B
      rows_times_slice<T, kMaxUnitTiles>(row0, step.rows, depth_total, dgates_of, w_slice,
                                         w_stride, tiles, dg_stage, dh_stage);
      for (int e = tid; e < kRows * U; e += kThreads) {
        const int r = e / U, u = e % U, b = row0 + r;
        if (b < step.rows && j0 + u < H) {
          finish_unit_dh(p, step, b, b, u, j0, dh_stage[r * unit_cols + u], dh_units);
        }
      }
      __syncthreads();  // the next pass (or step) reads dh_units, overwrites dh_stage
    }
  }
}

}  // namespace fastlstm
