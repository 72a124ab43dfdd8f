// Arguments of the per-step kernels: plain pointers and sizes, no torch, so
// that the CUDA library, the emulator and the torch glue share one definition.
//
// Rows of a step are the sequences still running at that step (a packed
// batch shrinks over time). The first `carried` rows continue from the
// previous step's rows; the rest start from h0/c0 (only the reverse direction
// of a packed batch has such rows past step 0).
#pragma once

#if !defined(__CUDACC_RTC__)  // NVRTC: size_t is built in
#include <stddef.h>
#endif

#include "storage_types.h"

// Tile arithmetic is shared by the host glue and the kernels.
#if defined(__CUDACC__)
#define FASTLSTM_TILE_FN __host__ __device__ constexpr
#else
#define FASTLSTM_TILE_FN constexpr
#endif

namespace fastlstm {

// The kernels' tile shapes, one tag per variant the glue can pick or force.
enum class StepVariant : int {
  kNarrow = 0,      // few rows per block: more blocks for small batches
  kWide = 1,        // twice the rows per block: W_hh read half as often
  kTensorCore = 2,  // half/bfloat16: the products on WMMA tiles (H, P multiples of 16)
};

constexpr int ceil_div(int a, int b) { return (a + b - 1) / b; }

// Tile shapes of the forward step kernel (lstm_step_forward.cuh).
struct ForwardTile {
  static constexpr int kUnits = 16;     // hidden units per block
  static constexpr int kRowLanes = 16;  // threads along the batch rows
  static constexpr int kDepth = 32;     // h / W_hh columns staged per pass
  static constexpr int kThreads = kUnits * kRowLanes;
  static constexpr int rows_per_thread(StepVariant v) { return v == StepVariant::kWide ? 2 : 1; }
  static constexpr int blocks_x(int hidden) { return ceil_div(hidden, kUnits); }
  static constexpr int blocks_y(int rows, StepVariant v) {
    return ceil_div(rows, kRowLanes * rows_per_thread(v));
  }
};

// Tile shapes of the backward step kernel (lstm_step_backward.cuh).
struct BackwardTile {
  static constexpr int kCols = 64;       // columns of dh_{t-1} per block
  static constexpr int kRowLanes = 4;    // threads along the batch rows
  static constexpr int kChunkUnits = 8;  // hidden units per depth pass
  static constexpr int kDepth = 4 * kChunkUnits;
  static constexpr int kThreads = kCols * kRowLanes;
  static constexpr int rows_per_thread(StepVariant v) { return v == StepVariant::kWide ? 4 : 2; }
  static constexpr int blocks_x(int proj) { return ceil_div(proj, kCols); }
  static constexpr int blocks_y(int rows, StepVariant v) {
    return ceil_div(rows, kRowLanes * rows_per_thread(v));
  }
};

// Tiles of the Tensor Core step kernels (lstm_step_tensor_core.cuh): WMMA
// 16x16x16 fragments, one warp per gate (forward) or per 16 columns of dh
// (backward).
struct TensorCoreTile {
  static constexpr int kTile = 16;
  static constexpr int kWarps = 4;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kCols = kTile * kWarps;  // backward: columns of dh per block
  static constexpr bool fits(int hidden, int proj) { return hidden % kTile == 0 && proj % kTile == 0; }
};

// Tiles of the persistent kernels (lstm_persistent_*.cuh). A block owns
// `units` consecutive hidden units (all four gates of each) and, backwards,
// the same columns of dh; its threads cover units x rows_per_pass rows.
struct PersistentTile {
  static constexpr int kThreads = 256;
  static constexpr int kDepth = 32;     // h / dgates columns staged per pass
  static constexpr int kMaxUnits = 32;  // so that a pass covers >= 8 rows
  static FASTLSTM_TILE_FN int rows_per_pass(int units) { return kThreads / units; }
  // Elements of the staging area of h (forward) or dgates (backward).
  static FASTLSTM_TILE_FN int staging_elems(int units) {
    return rows_per_pass(units) * (kDepth + 1);
  }
  // Dynamic shared memory, in elements of the accumulation type: the W_hh
  // slice, the staging area, and the per-row state of the block's units.
  static constexpr size_t forward_elems(int hidden, int units, int batch) {
    return (size_t)4 * units * (hidden + 1) + (size_t)staging_elems(units) +
           (size_t)batch * units;
  }
  static constexpr size_t backward_elems(int hidden, int units, int batch) {
    return (size_t)units * (4 * hidden + 1) + (size_t)staging_elems(units) +
           (size_t)2 * batch * units;
  }
};

// The step schedule on the device: rows and first row of every step.
// Without packing (every step full) there are no arrays: step t has
// full_rows rows from row t * full_rows, and nothing is copied to the device.
struct DeviceSchedule {
  const int* batch;   // [T], or nullptr when every step is full
  const int* offset;  // [T], or nullptr when every step is full
  int full_rows;      // B, when batch is nullptr
  int steps;
  bool reverse;
};

// Pointers of type T hold storage (input, weights, h, gradients flowing in
// and out); pointers of type acc_t<T> hold the cell state, the workspace and
// the recurrent gradients, kept in the accumulation type (float for half
// and bfloat16) as the op's schema promises.

// Tiles of the 2-D persistent kernels (lstm_persistent2d.cuh): block (x, y)
// owns `units` hidden units (all four gate rows of each, W_hh's rows of them
// in shared memory in the storage type) for `slice_rows` batch rows; a
// thread computes all four gates of units_per_thread units for
// rows_per_thread rows, a group of lanes sharing the columns, and a step
// takes as many passes over the slice's rows as the threads need.
struct Persistent2dTile {
  static constexpr int kThreads = 256;
  // Units a block: up to a whole small layer, so that a batch slice runs on
  // one block with no handshake between blocks (where W_hh fits).
  static constexpr int kMaxUnits = 128;
  static constexpr int kStageElems = 8192;  // h of a pass's rows, columns staged per pass
  // A thread's register tile: 4 rows x 2 units x 4 gates (each h value it
  // loads serves 8 gate rows, each weight 4 batch rows) where the block's
  // units pair up and the tiles give at least 4 warps of lanes to split the
  // columns; else 1 row x 1 unit. (bench/gpu_model.py's scalar_tile.)
  static FASTLSTM_TILE_FN int rows_per_thread(int units, int slice_rows) {
    return slice_rows >= 2 && units % 2 == 0 && units / 2 * ((slice_rows + 3) / 4) >= 4 ? 4 : 1;
  }
  static FASTLSTM_TILE_FN int units_per_thread(int rows_per_thread) {
    return rows_per_thread > 1 ? 2 : 1;
  }
  // Rows of the slice one pass covers.
  static FASTLSTM_TILE_FN int pass_rows(int units, int slice_rows) {
    const int per_thread = rows_per_thread(units, slice_rows);
    const int rows = kThreads / (units / units_per_thread(per_thread)) * per_thread;
    return rows < slice_rows ? rows : slice_rows;
  }
  static FASTLSTM_TILE_FN int stage_cols(int hidden, int rows) {
    return kStageElems / rows - 1 < hidden ? kStageElems / rows - 1 : hidden;
  }
  template <typename T>
  static FASTLSTM_TILE_FN size_t weight_bytes(int units, int hidden) {
    return ((size_t)4 * units * hidden * sizeof(T) + 15) / 16 * 16;
  }
  // Dynamic shared memory of the forward: the W_hh rows, the staged h, the
  // slice's cells, and where one block holds the layer, the slice's h.
  template <typename T>
  static constexpr size_t forward_bytes(int hidden, int units, int slice_rows) {
    const int rows = pass_rows(units, slice_rows);
    const size_t kept = units >= hidden ? (size_t)slice_rows * hidden : 0;
    return weight_bytes<T>(units, hidden) +
           ((size_t)rows * (stage_cols(hidden, rows) + 1) + (size_t)slice_rows * units + kept) *
               sizeof(acc_t<T>);
  }
  // Of the backward: W_hh's columns of the units, the staged dgates (4H a
  // row), the slice's dL/dh and dL/dc, and where one block holds the layer,
  // the slice's dgates of the step.
  template <typename T>
  static constexpr size_t backward_bytes(int hidden, int units, int slice_rows) {
    const int rows = pass_rows(units, slice_rows);
    const size_t kept = units >= hidden ? (size_t)slice_rows * 4 * hidden : 0;
    return weight_bytes<T>(units, hidden) +
           ((size_t)rows * (stage_cols(4 * hidden, rows) + 1) + (size_t)2 * slice_rows * units +
            kept) *
               sizeof(acc_t<T>);
  }
};

// The 2-D persistent kernels on Tensor Cores (lstm_persistent2d_tensor_core.cuh):
// a block owns 32 units (128 gate rows) and takes its batch slice in passes of
// 16 rows (m16n16k16; TF32 m16n16k8), or, for half and bfloat16 slices of at
// most 8 rows, of 8 (forward m32n8k16, backward m8n32k16: half the padding).
// Each warp holds its share of W_hh in WMMA fragments for the whole sequence,
// register_tiles(pass) k-tiles of it in registers and the rest in shared
// memory. With passes of 8, a warp's tile is twice as tall (or wide), so the
// 8 warps split the k range in k_parts(pass) parts, whose partial products
// add in a fixed order. Multiplicands: half, bfloat16, or float as TF32.
struct Persistent2dTensorCoreTile {
  static constexpr int kThreads = 256;
  static constexpr int kWarps = kThreads / 32;
  static constexpr int kUnits = 32;
  static constexpr int kGateRows = 4 * kUnits;
  static constexpr int kRows = 16;        // most batch rows a pass
  static constexpr int kSmallRows = 8;    // a pass of the small-batch tiles
  static constexpr int kRegisterTiles = 24;  // of 16 x 16 (TF32 16 x 8) a warp
  template <typename T>
  static FASTLSTM_TILE_FN int tile_k() { return sizeof(T) == 2 ? 16 : 8; }
  // Rows a pass for a slice: 8 where half or bfloat16 slices have at most 8.
  template <typename T>
  static FASTLSTM_TILE_FN int pass_rows(int slice_rows) {
    return sizeof(T) == 2 && slice_rows <= kSmallRows ? kSmallRows : kRows;
  }
  static FASTLSTM_TILE_FN int k_parts(int pass) { return kRows / pass; }
  static FASTLSTM_TILE_FN int register_tiles(int pass) { return kRegisterTiles * pass / kRows; }
  // Columns of a warp's k part held in registers.
  template <typename T>
  static FASTLSTM_TILE_FN int register_columns(int hidden, int pass) {
    const int part = hidden / k_parts(pass), most = register_tiles(pass) * tile_k<T>();
    return part < most ? part : most;
  }
  template <typename T>
  static FASTLSTM_TILE_FN int rest_columns(int hidden, int pass) {
    return hidden / k_parts(pass) - register_columns<T>(hidden, pass);
  }
  // A row of a multiplicand in shared memory: padded by 16 bytes, so that
  // tiles stay 32-byte aligned and their rows fall on other banks.
  template <typename T>
  static FASTLSTM_TILE_FN int stride(int columns) { return columns + 16 / (int)sizeof(T); }
  static FASTLSTM_TILE_FN size_t aligned(size_t bytes) { return (bytes + 31) / 32 * 32; }
  // The forward's W_hh past the registers: [k parts][128 gate rows][rest].
  template <typename T>
  static FASTLSTM_TILE_FN size_t rest_bytes(int hidden, int pass) {
    const int rest = rest_columns<T>(hidden, pass);
    return rest > 0 ? aligned((size_t)k_parts(pass) * kGateRows * stride<T>(rest) * sizeof(T))
                    : 0;
  }
  template <typename T>
  static FASTLSTM_TILE_FN size_t stage_bytes(int hidden, int pass) {
    return aligned((size_t)pass * stride<T>(hidden) * sizeof(T));
  }
  // The forward's gate tile, [k parts][128][pass], and the backward's
  // partial sums, [8 warps][pass x units a warp]: 8 KiB at either pass.
  static constexpr size_t kGateTileBytes = (size_t)kGateRows * kRows * sizeof(float);
  static constexpr size_t kPartialBytes = (size_t)kWarps * 16 * 16 * sizeof(float);
  // Dynamic shared memory: W_hh's columns past the registers, the staged h,
  // the gate tile, the slice's cells.
  template <typename T>
  static FASTLSTM_TILE_FN size_t forward_bytes(int hidden, int slice_rows) {
    const int pass = pass_rows<T>(slice_rows);
    return rest_bytes<T>(hidden, pass) + stage_bytes<T>(hidden, pass) + kGateTileBytes +
           (size_t)slice_rows * kUnits * sizeof(float);
  }
  // The backward: W_hh's 4H rows of the block's units fall in 4 k_parts
  // parts; a part's rows past the registers sit in shared memory,
  // [parts][rest][32 units]; then the staged dgates (4H a row), the eight
  // warps' partial sums, the slice's dL/dh and dL/dc.
  template <typename T>
  static FASTLSTM_TILE_FN size_t backward_rest_bytes(int hidden, int pass) {
    const int rest = rest_columns<T>(hidden, pass);
    return rest > 0 ? aligned((size_t)4 * k_parts(pass) * rest * stride<T>(kUnits) * sizeof(T))
                    : 0;
  }
  template <typename T>
  static FASTLSTM_TILE_FN size_t backward_bytes(int hidden, int slice_rows) {
    const int pass = pass_rows<T>(slice_rows);
    return backward_rest_bytes<T>(hidden, pass) + stage_bytes<T>(4 * hidden, pass) +
           kPartialBytes + (size_t)2 * slice_rows * kUnits * sizeof(float);
  }
};

// All steps [k_begin, k_end) of a layer direction in one cooperative launch
// (no projection: P = H).
template <typename T>
struct PersistentForwardParams {
  const T* pre_x;      // [N, 4H]: x W_ihᵀ + b, rows of steps k_begin.. at row row0
  const T* h0;         // [B, H]
  const T* w_hh;       // [4H, H]
  acc_t<T>* c_state;   // [B, H]: c at k_begin in, c at k_end out
  T* output;           // [N, H]: h_t of every row
  acc_t<T>* gates;     // [N, 4H] (at row row0; may alias pre_x) when saving
  acc_t<T>* cells;     // [N, H] when saving
  DeviceSchedule sched;
  int k_begin, k_end, row0;  // visited steps of this launch; first row of pre_x/gates
  int batch, hidden, units;
  bool tensor_cores;         // the WMMA variant (half, bfloat16; float as TF32)
  // The 2-D kernel (lstm_persistent2d.cuh) where slice_rows > 0: rows per
  // batch slice (grid.y slices), and per slice a counter, zero at launch, of
  // the steps its blocks have finished.
  int slice_rows;
  int* step_counters;        // [ceil(batch / slice_rows)]
};

template <typename T>
struct PersistentBackwardParams {
  const acc_t<T>* gates;     // [N, 4H]: activated gates
  const acc_t<T>* cells;     // [N, H]
  const T* c0;               // [B, H]
  const T* grad_output;      // [N, H]
  const acc_t<T>* grad_h_n;  // [B, H]
  const acc_t<T>* grad_c_n;  // [B, H]
  const T* w_hh;             // [4H, H]
  T* dgates;                 // [N, 4H]
  acc_t<T>* grad_h0;         // [B, H]
  acc_t<T>* grad_c0;         // [B, H]
  DeviceSchedule sched;
  int batch, hidden, units;
  bool tensor_cores;         // half/bfloat16 with H % 16 == 0: the WMMA variant
  int slice_rows;            // as PersistentForwardParams: the 2-D kernel where > 0
  int* step_counters;        // [ceil(batch / slice_rows)]
};

template <typename T>
struct ForwardStepParams {
  const T* pre_x;     // [rows, 4H]: x_t W_ihᵀ + b_ih + b_hh of this step
  const T* h_prev;    // [carried, P]: h_{t-1} of the carried rows
  const T* h0;        // [B, P]: start state of rows >= carried
  const T* w_hh;      // [4H, P]
  acc_t<T>* c_state;  // [B, H]: c_{t-1} in, c_t out, updated in place per row
  T* h_out;           // [rows, H]: o * tanh(c_t), before any projection
  acc_t<T>* gates;    // [rows, 4H]: activated gates, when saving the workspace
                      //   (may alias pre_x: each element is read before written)
  acc_t<T>* cells;    // [rows, H]: c_t, when saving the workspace
  int rows, carried, hidden, proj;
};

template <typename T>
struct BackwardStepParams {
  const acc_t<T>* gates;    // [rows, 4H]: activated gates of step t
  const acc_t<T>* cells;    // [rows, H]: c_t
  const acc_t<T>* c_prev;   // [carried, H]: c_{t-1} of the carried rows
  const T* c0;              // [B, H]: start state of rows >= carried
  const T* dh_out;          // [rows, H]: dL/dh_t from the output (or through W_hr)
  const acc_t<T>* dh_rec;   // [rows, H]: dL/dh_t from step t+1; null with a
                            //   projection, where dh_out already holds it
  const acc_t<T>* dc_next;  // [rows, H]: dL/dc_t from step t+1
  const T* w_hh;            // [4H, P]
  T* dgates;                // [rows, 4H]: dL/d(pre-activation)
  acc_t<T>* dc_prev;        // [rows, H]: dL/dc_{t-1} (not dc_next: other blocks read it)
  acc_t<T>* dh_prev;        // [rows, P]: dL/dh_{t-1} = dgates W_hh
  int rows, carried, hidden, proj;
};

}  // namespace fastlstm
