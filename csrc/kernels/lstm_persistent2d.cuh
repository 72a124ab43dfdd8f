// The 2-D persistent kernels, forward and backward: all time steps of a
// layer direction (no projection) in one cooperative launch whose grid
// splits the work both ways. Block (x, y) owns `units` hidden units, all four gate rows of each,
// with those rows of W_hh kept in shared memory in the storage type for the
// whole sequence, and computes them for batch slice y (`slice_rows` rows).
// So every SM has work at every batch: at small batch the grid spreads over
// units, at large batch over slices too, where a 1-D split leaves blocks
// looping over rows.
//
// A block reads h_{t-1} only of its own slice, written by the slice's blocks,
// so instead of a grid-wide barrier each slice keeps a step counter: a block
// adds one (release) when its part of h_t is written, and waits (acquire)
// until every block of its slice has finished the previous step. The next
// step's input projection is loaded before that wait. The backward mirrors
// it with W_hh's columns of the units (a slice of W_hhᵀ) on chip: per step
// the gate gradients of its units and rows, a publish, and once every block
// of the slice has published, dL/dh_{t-1} of its units from the slice's
// dgates. Threads: a group of
// `split` lanes per register tile (kRows rows x kUnitTile units, the units
// U / kUnitTile apart) shares the columns of the dot products and sums them
// by a fixed butterfly: deterministic, no atomics in any sum.
#pragma once

#include "kernel_prelude.cuh"

#include "../gate_math.h"
#include "convert.cuh"
#include "lstm_persistent_backward.cuh"
#include "lstm_persistent_forward.cuh"
#include "persistent_schedule.cuh"
#include "persistent_split.cuh"
#include "step_params.h"

namespace fastlstm {

// Units of a thread's register tile, with kRows rows.
template <int kRows>
constexpr int kUnitTile = Persistent2dTile::units_per_thread(kRows);

// Rows [r0, r0 + rows) of h_{t-1}, columns [k0, k0 + width), into the staging
// tile (acc type, rows padded by one against bank conflicts): carried rows
// from the previous step's output, or from `kept` (the slice's h_{t-1} on
// chip, [slice_rows][H]) where the block keeps it; new rows from h0.
template <typename T>
__device__ __forceinline__ void stage_slice_hidden(const PersistentForwardParams<T>& p,
                                                   const ScheduledStep& step, int r0, int rows,
                                                   int k0, int width, int stride,
                                                   const acc_t<T>* kept, acc_t<T>* h_stage) {
  const int H = p.hidden, slice0 = blockIdx.y * p.slice_rows;
  const T* h_prev = step.prev >= 0 ? p.output + (size_t)step.prev * H : nullptr;
  for (int e = threadIdx.x; e < rows * width; e += blockDim.x) {
    const int r = e / width, col = e % width, b = r0 + r;
    h_stage[r * stride + col] =
        b >= step.carried ? to_acc(p.h0[(size_t)b * H + k0 + col])
        : kept            ? kept[(size_t)(b - slice0) * H + k0 + col]
                          : to_acc(h_prev[(size_t)b * H + k0 + col]);
  }
}

// Waits until every block of this batch slice (the grid's x extent) has
// finished `steps` steps of this launch (thread 0 spins; the block meets it
// at a barrier). A slice on one block needs the barrier only: it makes the
// block's global writes visible to its threads.
__device__ __forceinline__ void wait_for_slice(int* counter, int steps) {
  if (threadIdx.x == 0 && steps > 0 && gridDim.x > 1) {
    cuda::atomic_ref<int, cuda::thread_scope_device> done(*counter);
    while (done.load(cuda::memory_order_acquire) < steps * (int)gridDim.x) __nanosleep(32);
  }
  __syncthreads();
}

// After a barrier: this block's part of the step is written.
__device__ __forceinline__ void publish_step(int* counter) {
  __syncthreads();
  if (threadIdx.x == 0 && gridDim.x > 1) {
    __threadfence();
    cuda::atomic_ref<int, cuda::thread_scope_device> done(*counter);
    done.fetch_add(1, cuda::memory_order_release);
  }
}

// A slice's h on chip, where one block holds the whole layer: its h_{t-1}
// staged from `read` (nullptr at a launch's first step: from the output),
// its h_t stored to `write` ([slice_rows][H]); both nullptr otherwise.
template <typename T>
struct HiddenOnChip {
  const acc_t<T>* read;
  acc_t<T>* write;
};

// One pass over rows [first_row, first_row + rows) of the slice at one step:
// the recurrent products of this thread's unit and kRows rows, summed over
// its lane group, then the cell update. pre holds the rows' input projection.
template <typename T, int kRows, bool kSaveWorkspace>
__device__ __forceinline__ void slice_pass(const PersistentForwardParams<T>& p,
                                           const ScheduledStep& step, const SplitLayout& lay,
                                           int first_row, int rows, const T* w_slice,
                                           acc_t<T>* h_stage, acc_t<T>* c_slice, HiddenOnChip<T> h,
                                           acc_t<T> (&pre)[kRows][kUnitTile<kRows>][kNumGates]) {
  using Acc = acc_t<T>;
  constexpr int kUnits = kUnitTile<kRows>;
  const int H = p.hidden, U = p.units, apart = U / kUnits;
  const int r0 = blockIdx.y * p.slice_rows + first_row;
  const int cols = Persistent2dTile::stage_cols(H, Persistent2dTile::pass_rows(U, p.slice_rows));
  const int stride = cols + 1, mine = lay.row * kRows;
  Acc acc[kRows][kUnits][kNumGates] = {};
  for (int k0 = 0; k0 < H; k0 += cols) {
    const int width = min(cols, H - k0);
    stage_slice_hidden(p, step, r0, rows, k0, width, stride, h.read, h_stage);
    __syncthreads();
    if (lay.active) {
      const T* w = w_slice + (size_t)lay.unit * H + k0;
      for (int kk = lay.part; kk < width; kk += lay.split) {
        Acc wv[kUnits][kNumGates];
        #pragma unroll
        for (int q = 0; q < kUnits; ++q) {
          #pragma unroll
          for (int g = 0; g < kNumGates; ++g) wv[q][g] = to_acc(w[(size_t)(g * U + q * apart) * H + kk]);
        }
        #pragma unroll
        for (int i = 0; i < kRows; ++i) {
          const Acc hv = mine + i < rows ? h_stage[(mine + i) * stride + kk] : Acc(0);
          #pragma unroll
          for (int q = 0; q < kUnits; ++q) {
            #pragma unroll
            for (int g = 0; g < kNumGates; ++g) acc[i][q][g] += wv[q][g] * hv;
          }
        }
      }
    }
    __syncthreads();  // the next pass overwrites the staging tile
  }
  #pragma unroll
  for (int i = 0; i < kRows; ++i) {
    #pragma unroll
    for (int q = 0; q < kUnits; ++q) {
      #pragma unroll
      for (int g = 0; g < kNumGates; ++g) acc[i][q][g] = sum_over_split(acc[i][q][g], lay.split);
      const int unit = lay.unit + q * apart, j = blockIdx.x * U + unit;
      if (lay.active && lay.part == 0 && j < H && mine + i < rows) {
        #pragma unroll
        for (int g = 0; g < kNumGates; ++g) pre[i][q][g] += acc[i][q][g];
        const acc_t<T> h_t = finish_persistent_cell<T, kSaveWorkspace>(
            p, step, r0 + mine + i, j, pre[i][q], c_slice[(first_row + mine + i) * U + unit]);
        if (h.write) h.write[(size_t)(first_row + mine + i) * H + j] = h_t;
      }
    }
  }
}

// The input projection of this thread's rows of a pass (its lane group's
// first lane only: the others do not finish cells).
template <typename T, int kRows>
__device__ __forceinline__ void load_pass_pre_x(const PersistentForwardParams<T>& p,
                                                const ScheduledStep& step, const SplitLayout& lay,
                                                int first_row, int rows,
                                                acc_t<T> (&pre)[kRows][kUnitTile<kRows>][kNumGates]) {
  constexpr int kUnits = kUnitTile<kRows>;
  const int mine = lay.row * kRows, r0 = blockIdx.y * p.slice_rows + first_row;
  #pragma unroll
  for (int i = 0; i < kRows; ++i) {
    #pragma unroll
    for (int q = 0; q < kUnits; ++q) {
      const int j = blockIdx.x * p.units + lay.unit + q * (p.units / kUnits);
      if (lay.active && lay.part == 0 && j < p.hidden && mine + i < rows) {
        load_pre_x(p, step, r0 + mine + i, j, pre[i][q]);
      }
    }
  }
}

template <typename T, int kRows, bool kSaveWorkspace>
__global__ void __launch_bounds__(Persistent2dTile::kThreads, 1)
lstm_forward_persistent2d(PersistentForwardParams<T> p) {
  using Acc = acc_t<T>;
  constexpr int kThreads = Persistent2dTile::kThreads;
  FASTLSTM_DYNAMIC_SHARED(unsigned char, shared_bytes);
  const int H = p.hidden, U = p.units, BS = p.slice_rows;
  const int pass = Persistent2dTile::pass_rows(U, BS);
  const int stride = Persistent2dTile::stage_cols(H, pass) + 1;
  T* w_slice = reinterpret_cast<T*>(shared_bytes);  // [4U][H]: row g*U + u
  Acc* h_stage =
      reinterpret_cast<Acc*>(shared_bytes + Persistent2dTile::weight_bytes<T>(U, H));  // [pass][stride]
  Acc* c_slice = h_stage + (size_t)pass * stride;                                       // [BS][U]
  // A slice on one block keeps its h_t on chip for the next step: no L2 round.
  Acc* h_kept = gridDim.x == 1 ? c_slice + (size_t)BS * U : nullptr;                   // [BS][H]

  const int tid = threadIdx.x, j0 = blockIdx.x * U, r0 = blockIdx.y * BS;
  int* counter = p.step_counters + blockIdx.y;
  const SplitLayout lay =  // lay.row: kRows rows; lay.unit: kUnitTile units, U / kUnitTile apart
      split_layout(U / kUnitTile<kRows>, (pass + kRows - 1) / kRows, tid);
  for (int e = tid; e < 4 * U * H; e += kThreads) {
    const int r = e / H, k = e % H, unit = j0 + r % U;
    w_slice[e] = unit < H ? p.w_hh[(size_t)((r / U) * H + unit) * H + k] : from_acc<T>(Acc(0));
  }
  for (int e = tid; e < BS * U; e += kThreads) {
    const int b = r0 + e / U, unit = j0 + e % U;
    c_slice[e] = b < p.batch && unit < H ? p.c_state[(size_t)b * H + unit] : Acc(0);
  }
  __syncthreads();

  for (int k = p.k_begin; k < p.k_end; ++k) {
    const ScheduledStep step = scheduled_step(p.sched, k);
    const int rows = min(BS, step.rows - r0);  // of this slice, at this step
    Acc pre[kRows][kUnitTile<kRows>][kNumGates];
    load_pass_pre_x(p, step, lay, 0, min(pass, rows), pre);  // before the wait
    wait_for_slice(counter, k - p.k_begin);
    const HiddenOnChip<T> h{k > p.k_begin ? h_kept : nullptr, h_kept};
    for (int first = 0; first < rows; first += pass) {
      if (first > 0) load_pass_pre_x(p, step, lay, first, min(pass, rows - first), pre);
      slice_pass<T, kRows, kSaveWorkspace>(p, step, lay, first, min(pass, rows - first), w_slice,
                                           h_stage, c_slice, h, pre);
    }
    publish_step(counter);
  }
  for (int e = tid; e < BS * U; e += kThreads) {
    const int b = r0 + e / U, unit = j0 + e % U;
    if (b < p.batch && unit < H) p.c_state[(size_t)b * H + unit] = c_slice[e];
  }
}

// Phase B of the backward over rows [first_row, first_row + rows) of the
// slice: dL/dh_{t-1} of this thread's unit and kRows rows = the rows' dgates
// (every block's, through L2) times W_hh's column of the unit.
template <typename T, int kRows>
__device__ __forceinline__ void slice_dh_pass(const PersistentBackwardParams<T>& p,
                                              const ScheduledStep& step, const SplitLayout& lay,
                                              int first_row, int rows, const T* w_slice,
                                              const acc_t<T>* dg_kept, acc_t<T>* dg_stage,
                                              acc_t<T>* dh_units) {
  using Acc = acc_t<T>;
  const int H = p.hidden, U = p.units, depth = kNumGates * H;
  const int r0 = blockIdx.y * p.slice_rows + first_row;
  const int cols = Persistent2dTile::stage_cols(depth, Persistent2dTile::pass_rows(U, p.slice_rows));
  const int stride = cols + 1, mine = lay.row * kRows, j0 = blockIdx.x * U;
  const T* dgates_step = p.dgates + (size_t)step.offset * depth;
  constexpr int kUnits = kUnitTile<kRows>;
  const int apart = U / kUnits;
  Acc acc[kRows][kUnits] = {};
  for (int n0 = 0; n0 < depth; n0 += cols) {
    const int width = min(cols, depth - n0);
    for (int e = threadIdx.x; e < rows * width; e += blockDim.x) {
      const int r = e / width, n = e % width;
      dg_stage[r * stride + n] = dg_kept ? dg_kept[(size_t)(first_row + r) * depth + n0 + n]
                                         : to_acc(dgates_step[(size_t)(r0 + r) * depth + n0 + n]);
    }
    __syncthreads();
    if (lay.active) {
      const T* w = w_slice + (size_t)lay.unit * depth + n0;
      for (int nn = lay.part; nn < width; nn += lay.split) {
        Acc wv[kUnits];
        #pragma unroll
        for (int q = 0; q < kUnits; ++q) wv[q] = to_acc(w[(size_t)q * apart * depth + nn]);
        #pragma unroll
        for (int i = 0; i < kRows; ++i) {
          const Acc dg = mine + i < rows ? dg_stage[(mine + i) * stride + nn] : Acc(0);
          #pragma unroll
          for (int q = 0; q < kUnits; ++q) acc[i][q] += dg * wv[q];
        }
      }
    }
    __syncthreads();  // the next pass overwrites the staging tile
  }
  #pragma unroll
  for (int i = 0; i < kRows; ++i) {
    #pragma unroll
    for (int q = 0; q < kUnits; ++q) {
      acc[i][q] = sum_over_split(acc[i][q], lay.split);
      const int unit = lay.unit + q * apart;
      if (lay.active && lay.part == 0 && j0 + unit < H && mine + i < rows) {
        finish_unit_dh(p, step, r0 + mine + i, first_row + mine + i, unit, j0, acc[i][q],
                       dh_units);
      }
    }
  }
}

template <typename T, int kRows>
__global__ void __launch_bounds__(Persistent2dTile::kThreads, 1)
lstm_backward_persistent2d(PersistentBackwardParams<T> p) {
  using Acc = acc_t<T>;
  constexpr int kThreads = Persistent2dTile::kThreads;
  FASTLSTM_DYNAMIC_SHARED(unsigned char, shared_bytes);
  const int H = p.hidden, U = p.units, BS = p.slice_rows, depth = kNumGates * H;
  const int pass = Persistent2dTile::pass_rows(U, BS);
  const int stride = Persistent2dTile::stage_cols(depth, pass) + 1;
  T* w_slice = reinterpret_cast<T*>(shared_bytes);  // [U][4H]: W_hh[n, j0 + u]
  Acc* dg_stage =
      reinterpret_cast<Acc*>(shared_bytes + Persistent2dTile::weight_bytes<T>(U, H));  // [pass][stride]
  Acc* dh_units = dg_stage + (size_t)pass * stride;  // [BS][U]: dL/dh_t from step t+1
  Acc* dc_units = dh_units + (size_t)BS * U;         // [BS][U]: dL/dc_t from step t+1
  // A slice on one block keeps its step's dgates on chip for phase B.
  Acc* dg_kept = gridDim.x == 1 ? dc_units + (size_t)BS * U : nullptr;  // [BS][4H]

  const int tid = threadIdx.x, j0 = blockIdx.x * U, r0 = blockIdx.y * BS;
  int* counter = p.step_counters + blockIdx.y;
  const SplitLayout lay = split_layout(U / kUnitTile<kRows>, (pass + kRows - 1) / kRows, tid);
  for (int e = tid; e < U * depth; e += kThreads) {
    const int u = e / depth, n = e % depth, j = j0 + u;
    w_slice[e] = j < H ? p.w_hh[(size_t)n * H + j] : from_acc<T>(Acc(0));
  }
  load_unit_grads(p, j0, r0, BS, dh_units, dc_units);
  __syncthreads();

  for (int k = p.sched.steps - 1, done = 0; k >= 0; --k, ++done) {
    const ScheduledStep step = scheduled_step(p.sched, k);
    const int rows = min(BS, step.rows - r0);  // of this slice, at this step
    unit_gate_grads(p, step, j0, r0, max(rows, 0), dh_units, dc_units, dg_kept);  // A
    publish_step(counter);
    wait_for_slice(counter, done + 1);
    for (int first = 0; first < rows; first += pass) {  // B
      slice_dh_pass<T, kRows>(p, step, lay, first, min(pass, rows - first), w_slice, dg_kept,
                              dg_stage, dh_units);
    }
    __syncthreads();  // the next step's A reads dh_units written here by other threads
  }
}

}  // namespace fastlstm
