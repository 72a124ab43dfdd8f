// The 2-D persistent forward with its recurrent products on Tensor Cores:
// the cut, the step counters and the cell code of the scalar kernel
// (lstm_persistent2d.cuh), with a block of 32 units whose 128 gate rows are
// the M side of the products and a pass of the batch slice the N side.
// Passes of 16 rows: eight 16-row tiles, one a warp. Passes of 8 (half and
// bfloat16 slices of at most 8 rows): four 32-row tiles (one a gate), each
// taken by two warps over the two halves of the k range. Each warp keeps its
// share of W_hh in WMMA fragments for the whole sequence: the first
// register_tiles(pass) k-tiles in registers (an array indexed only by
// unrolled, compile-time indices: no local memory), the rest in shared
// memory. Per pass, h_{t-1} is staged in shared memory as the column-major
// B operand, the float accumulators go through a shared gate tile to the
// cell update. Half and bfloat16 multiply as they are stored; float
// multiplies as TF32 (rounded to nearest, ties away), which the glue runs
// only where torch allows TF32 for cuDNN's RNNs, as cuDNN does.
#pragma once

#include "kernel_prelude.cuh"

#include "lstm_persistent2d.cuh"

namespace fastlstm {

// A storage type's WMMA operand: the fragment's element type, the type in
// memory, and whether it multiplies as TF32.
template <typename T>
struct TensorCoreOperand;
template <>
struct TensorCoreOperand<half_t> {
  using Fragment = __half;
  using Memory = __half;
  static constexpr bool kTf32 = false;
};
template <>
struct TensorCoreOperand<bfloat16_t> {
  using Fragment = __nv_bfloat16;
  using Memory = __nv_bfloat16;
  static constexpr bool kTf32 = false;
};
template <>
struct TensorCoreOperand<float> {
  using Fragment = nvcuda::wmma::precision::tf32;
  using Memory = float;
  static constexpr bool kTf32 = true;
};

// A loaded multiplicand as the Tensor Cores take it: TF32 rounded.
template <typename T, typename Fragment>
__device__ __forceinline__ void as_multiplicand(Fragment& f) {
  if constexpr (TensorCoreOperand<T>::kTf32) {
    for (int t = 0; t < f.num_elements; ++t) f.x[t] = nvcuda::wmma::__float_to_tf32(f.x[t]);
  }
}

// Cells of a pass (32 units x kPass rows) a thread updates.
template <int kPass>
constexpr int kCellsPerThread =
    Persistent2dTensorCoreTile::kUnits * kPass / Persistent2dTensorCoreTile::kThreads;

// The input projection of this thread's cells of a pass of `rows` rows
// from batch row r0.
template <typename T, int kCells>
__device__ __forceinline__ void load_cells_pre_x(const PersistentForwardParams<T>& p,
                                                 const ScheduledStep& step, int r0, int rows,
                                                 float (&pre)[kCells][kNumGates]) {
  constexpr int kUnits = Persistent2dTensorCoreTile::kUnits;
  for (int i = 0; i < kCells; ++i) {
    const int e = threadIdx.x + i * Persistent2dTensorCoreTile::kThreads;
    if (e / kUnits < rows) load_pre_x(p, step, r0 + e / kUnits, blockIdx.x * kUnits + e % kUnits, pre[i]);
  }
}

// Gate row R of a block (gate R / 32, unit R % 32): its row of W_hh.
__device__ __forceinline__ size_t gate_row_of_w_hh(int R, int hidden, int j0) {
  constexpr int kUnits = Persistent2dTensorCoreTile::kUnits;
  return (size_t)(R / kUnits) * hidden + j0 + R % kUnits;
}

template <typename T, int kPass, bool kSaveWorkspace>
__global__ void __launch_bounds__(Persistent2dTensorCoreTile::kThreads, 1)
lstm_forward_persistent2d_tensor_core(PersistentForwardParams<T> p) {
  namespace wmma = nvcuda::wmma;
  using Tile = Persistent2dTensorCoreTile;
  using M = typename TensorCoreOperand<T>::Memory;
  using Precision = typename TensorCoreOperand<T>::Fragment;
  constexpr int kK = Tile::tile_k<T>(), kUnits = Tile::kUnits, kGateRows = Tile::kGateRows;
  constexpr int kParts = Tile::k_parts(kPass), kM = 16 * kParts, kMTiles = kGateRows / kM;
  constexpr int kRegisterTiles = Tile::register_tiles(kPass), kCells = kCellsPerThread<kPass>;
  using AFragment = wmma::fragment<wmma::matrix_a, kM, kPass, kK, Precision, wmma::row_major>;
  using BFragment = wmma::fragment<wmma::matrix_b, kM, kPass, kK, Precision, wmma::col_major>;
  using CFragment = wmma::fragment<wmma::accumulator, kM, kPass, kK, float>;
  FASTLSTM_DYNAMIC_SHARED(unsigned char, shared_bytes);
  const int H = p.hidden, BS = p.slice_rows, tid = threadIdx.x, warp = tid / 32;
  const int part_cols = H / kParts, register_cols = Tile::register_columns<T>(H, kPass);
  const int register_tiles = register_cols / kK, tiles = part_cols / kK;
  const int rest = part_cols - register_cols;
  const int rest_stride = Tile::stride<M>(rest), h_stride = Tile::stride<M>(H);
  M* w_rest = reinterpret_cast<M*>(shared_bytes);  // [kParts][128][rest_stride]
  M* h_stage = reinterpret_cast<M*>(shared_bytes + Tile::rest_bytes<M>(H, kPass));  // [kPass][h_stride]
  float* gate_tile = reinterpret_cast<float*>(reinterpret_cast<unsigned char*>(h_stage) +
                                              Tile::stage_bytes<M>(H, kPass));  // [kParts][128][kPass]
  float* c_slice = gate_tile + kParts * kGateRows * kPass;                      // [BS][32]

  // Warp w's tile: gate rows kM (w % kMTiles).. of the block's 128, over
  // columns [k_first, k_first + H / kParts) of W_hh.
  const int j0 = blockIdx.x * kUnits, r0 = blockIdx.y * BS;
  const int m_first = kM * (warp % kMTiles), part = warp / kMTiles, k_first = part * part_cols;
  const M* w_rows = reinterpret_cast<const M*>(p.w_hh) + gate_row_of_w_hh(m_first, H, j0) * H + k_first;
  AFragment w_registers[kRegisterTiles];
#pragma unroll
  for (int t = 0; t < kRegisterTiles; ++t) {
    if (t < register_tiles) {
      wmma::load_matrix_sync(w_registers[t], w_rows + t * kK, H);
      as_multiplicand<T>(w_registers[t]);
    }
  }
  for (int e = tid; e < kParts * kGateRows * rest; e += blockDim.x) {
    const int r = e / rest, k = e % rest, q = r / kGateRows;
    w_rest[r * rest_stride + k] = reinterpret_cast<const M*>(
        p.w_hh)[gate_row_of_w_hh(r % kGateRows, H, j0) * H + q * part_cols + register_cols + k];
  }
  for (int e = tid; e < BS * kUnits; e += blockDim.x) {
    const int b = r0 + e / kUnits;
    c_slice[e] = b < p.batch ? p.c_state[(size_t)b * H + j0 + e % kUnits] : 0.0f;
  }
  __syncthreads();

  int* counter = p.step_counters + blockIdx.y;
  for (int k = p.k_begin; k < p.k_end; ++k) {
    const ScheduledStep step = scheduled_step(p.sched, k);
    const int rows = min(BS, step.rows - r0);  // of this slice, at this step
    // This thread's cells of a pass: e = tid + kThreads * i, unit e % 32, row e / 32.
    float pre[kCells][kNumGates];
    load_cells_pre_x(p, step, r0, min(kPass, rows), pre);  // the first pass's, before the wait
    wait_for_slice(counter, k - p.k_begin);
    for (int first = 0; first < rows; first += kPass) {
      const int pass = min(kPass, rows - first);
      if (first > 0) load_cells_pre_x(p, step, r0 + first, pass, pre);
      const T* h_prev = step.prev >= 0 ? p.output + (size_t)step.prev * H : nullptr;
      for (int e = tid; e < kPass * H; e += blockDim.x) {
        const int r = e / H, col = e % H, b = r0 + first + r;
        T v = from_acc<T>(0.0f);
        if (r < pass) v = b < step.carried ? h_prev[(size_t)b * H + col] : p.h0[(size_t)b * H + col];
        h_stage[r * h_stride + col] = reinterpret_cast<const M&>(v);
      }
      __syncthreads();
      CFragment acc;
      wmma::fill_fragment(acc, 0.0f);
      const M* h_part = h_stage + k_first;
#pragma unroll
      for (int t = 0; t < kRegisterTiles; ++t) {
        if (t < register_tiles) {
          BFragment h;
          wmma::load_matrix_sync(h, h_part + t * kK, h_stride);
          as_multiplicand<T>(h);
          wmma::mma_sync(acc, w_registers[t], h, acc);
        }
      }
      const M* w_part = w_rest + (size_t)(part * kGateRows + m_first) * rest_stride;
      for (int t = register_tiles; t < tiles; ++t) {
        AFragment w;
        wmma::load_matrix_sync(w, w_part + (t - register_tiles) * kK, rest_stride);
        as_multiplicand<T>(w);
        BFragment h;
        wmma::load_matrix_sync(h, h_part + t * kK, h_stride);
        as_multiplicand<T>(h);
        wmma::mma_sync(acc, w, h, acc);
      }
      wmma::store_matrix_sync(gate_tile + (part * kGateRows + m_first) * kPass, acc, kPass,
                              wmma::mem_row_major);
      __syncthreads();
      for (int i = 0; i < kCells; ++i) {
        const int e = tid + i * Tile::kThreads, u = e % kUnits, r = e / kUnits;
        if (r >= pass) continue;
        for (int g = 0; g < kNumGates; ++g) {
          float product = gate_tile[(g * kUnits + u) * kPass + r];
          for (int q = 1; q < kParts; ++q) product += gate_tile[((q * 4 + g) * kUnits + u) * kPass + r];
          pre[i][g] += product;
        }
        finish_persistent_cell<T, kSaveWorkspace>(p, step, r0 + first + r, j0 + u, pre[i],
                                                  c_slice[(first + r) * kUnits + u]);
      }
      __syncthreads();  // the next pass overwrites the staged h and the gate tile
    }
    publish_step(counter);
  }
  for (int e = tid; e < BS * kUnits; e += blockDim.x) {
    const int b = r0 + e / kUnits;
    if (b < p.batch) p.c_state[(size_t)b * H + j0 + e % kUnits] = c_slice[e];
  }
}

// The 2-D persistent backward on Tensor Cores: phase A (the gate gradients
// of the block's 32 units) as the scalar kernel; phase B, dL/dh_{t-1} of
// those units = the slice's dgates (staged, a pass of rows at a time, as the
// A operand) times W_hh's columns of the units (the B operand, in WMMA
// fragments for the whole sequence, registers first). The 4H rows of those
// columns fall in 4 k_parts(pass) parts: passes of 16 give each quarter to
// two warps (16 units each), passes of 8 each eighth to one warp (all 32
// units). The parts' partial sums meet in shared memory and add in a fixed
// order: deterministic.
template <typename T, int kPass>
__global__ void __launch_bounds__(Persistent2dTensorCoreTile::kThreads, 1)
lstm_backward_persistent2d_tensor_core(PersistentBackwardParams<T> p) {
  namespace wmma = nvcuda::wmma;
  using Tile = Persistent2dTensorCoreTile;
  using M = typename TensorCoreOperand<T>::Memory;
  using Precision = typename TensorCoreOperand<T>::Fragment;
  constexpr int kK = Tile::tile_k<T>(), kUnits = Tile::kUnits;
  constexpr int kN = 16 * Tile::k_parts(kPass), kUnitTiles = kUnits / kN;  // units a warp
  constexpr int kParts = Tile::kWarps / kUnitTiles, kRegisterTiles = Tile::register_tiles(kPass);
  using AFragment = wmma::fragment<wmma::matrix_a, kPass, kN, kK, Precision, wmma::row_major>;
  using BFragment = wmma::fragment<wmma::matrix_b, kPass, kN, kK, Precision, wmma::row_major>;
  using CFragment = wmma::fragment<wmma::accumulator, kPass, kN, kK, float>;
  FASTLSTM_DYNAMIC_SHARED(unsigned char, shared_bytes);
  const int H = p.hidden, BS = p.slice_rows, depth = kNumGates * H, part_rows = depth / kParts;
  const int tid = threadIdx.x, warp = tid / 32, unit_tile = warp % kUnitTiles, part = warp / kUnitTiles;
  const int register_rows = Tile::register_columns<T>(H, kPass);
  const int register_tiles = register_rows / kK, tiles = part_rows / kK;
  const int rest = part_rows - register_rows;
  const int w_stride = Tile::stride<M>(kUnits), dg_stride = Tile::stride<M>(depth);
  M* w_rest = reinterpret_cast<M*>(shared_bytes);  // [kParts][rest][w_stride]
  M* dg_stage = reinterpret_cast<M*>(shared_bytes + Tile::backward_rest_bytes<M>(H, kPass));  // [kPass][dg_stride]
  float* partial = reinterpret_cast<float*>(reinterpret_cast<unsigned char*>(dg_stage) +
                                            Tile::stage_bytes<M>(depth, kPass));  // [8][kPass][kN]
  float* dh_units = partial + Tile::kPartialBytes / sizeof(float);  // [BS][32]: dL/dh_t from step t+1
  float* dc_units = dh_units + BS * kUnits;  // [BS][32]: dL/dc_t from step t+1

  const int j0 = blockIdx.x * kUnits, r0 = blockIdx.y * BS, n_first = part * part_rows;
  const M* w_columns =
      reinterpret_cast<const M*>(p.w_hh) + (size_t)n_first * H + j0 + kN * unit_tile;
  BFragment w_registers[kRegisterTiles];
#pragma unroll
  for (int t = 0; t < kRegisterTiles; ++t) {
    if (t < register_tiles) {
      wmma::load_matrix_sync(w_registers[t], w_columns + (size_t)t * kK * H, H);
      as_multiplicand<T>(w_registers[t]);
    }
  }
  for (int e = tid; e < kParts * rest * kUnits; e += blockDim.x) {
    const int r = e / kUnits, u = e % kUnits, q = r / rest, n = r % rest;
    w_rest[r * w_stride + u] = reinterpret_cast<const M*>(
        p.w_hh)[(size_t)(q * part_rows + register_rows + n) * H + j0 + u];
  }
  load_unit_grads(p, j0, r0, BS, dh_units, dc_units);
  __syncthreads();

  int* counter = p.step_counters + blockIdx.y;
  for (int k = p.sched.steps - 1, done = 0; k >= 0; --k, ++done) {
    const ScheduledStep step = scheduled_step(p.sched, k);
    const int rows = min(BS, step.rows - r0);  // of this slice, at this step
    unit_gate_grads(p, step, j0, r0, max(rows, 0), dh_units, dc_units);  // A
    publish_step(counter);
    wait_for_slice(counter, done + 1);
    const T* dgates_step = p.dgates + (size_t)step.offset * depth;
    for (int first = 0; first < rows; first += kPass) {  // B
      const int pass = min(kPass, rows - first);
      for (int e = tid; e < kPass * depth; e += blockDim.x) {
        const int r = e / depth, n = e % depth;
        T v = from_acc<T>(0.0f);
        if (r < pass) v = dgates_step[(size_t)(r0 + first + r) * depth + n];
        dg_stage[r * dg_stride + n] = reinterpret_cast<const M&>(v);
      }
      __syncthreads();
      CFragment acc;
      wmma::fill_fragment(acc, 0.0f);
      const M* dg = dg_stage + n_first;
#pragma unroll
      for (int t = 0; t < kRegisterTiles; ++t) {
        if (t < register_tiles) {
          AFragment a;
          wmma::load_matrix_sync(a, dg + t * kK, dg_stride);
          as_multiplicand<T>(a);
          wmma::mma_sync(acc, a, w_registers[t], acc);
        }
      }
      const M* w_part = w_rest + (size_t)part * rest * w_stride + kN * unit_tile;
      for (int t = register_tiles; t < tiles; ++t) {
        AFragment a;
        wmma::load_matrix_sync(a, dg + t * kK, dg_stride);
        as_multiplicand<T>(a);
        BFragment w;
        wmma::load_matrix_sync(w, w_part + (size_t)(t - register_tiles) * kK * w_stride, w_stride);
        as_multiplicand<T>(w);
        wmma::mma_sync(acc, a, w, acc);
      }
      wmma::store_matrix_sync(partial + warp * kPass * kN, acc, kN, wmma::mem_row_major);
      __syncthreads();
      for (int e = tid; e < kUnits * pass; e += blockDim.x) {
        const int u = e % kUnits, r = e / kUnits;
        float dh = 0;
        for (int q = 0; q < kParts; ++q) {
          dh += partial[(q * kUnitTiles + u / kN) * kPass * kN + r * kN + u % kN];
        }
        finish_unit_dh(p, step, r0 + first + r, first + r, u, j0, dh, dh_units);
      }
      __syncthreads();  // the next pass overwrites the staged dgates and the partials
    }
    __syncthreads();  // the next step's A reads dh_units written here by other threads
  }
}

}  // namespace fastlstm
