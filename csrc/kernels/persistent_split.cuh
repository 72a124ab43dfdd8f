// How the threads of a persistent block share a step's dot products: each
// (unit, row) pair of a pass gets `split` consecutive lanes of one warp, which
// take every split-th column and then sum their partials by a shuffle
// butterfly. At small batch a pass has few rows, and without the split most
// threads would compute rows that do not exist; with it every thread takes a
// share of the columns. The butterfly adds in a fixed order, and gives every
// lane of the group the same bits, so results stay deterministic.
#pragma once

#include "kernel_prelude.cuh"

#include "step_params.h"

namespace fastlstm {

struct SplitLayout {
  int rows;    // batch rows per pass
  int split;   // lanes per (unit, row) pair: a power of two <= 32
  int unit;    // this thread's unit in the block
  int row;     // its row in the pass
  int part;    // its lane in the pair's group: columns part, part + split, ...
  bool active; // whether its (unit, row) pair exists (unit * row < threads)
};

__device__ __forceinline__ SplitLayout split_layout(int units, int batch, int tid) {
  constexpr int kThreads = PersistentTile::kThreads;
  SplitLayout s;
  s.rows = min(max(batch, 1), kThreads / units);
  s.split = 1;
  while (s.split < 32 && 2 * s.split * units * s.rows <= kThreads) s.split *= 2;
  s.part = tid % s.split;
  const int pair = tid / s.split;
  s.unit = pair % units;
  s.row = pair / units;
  s.active = s.row < s.rows;
  return s;
}

// Columns staged per pass for `rows` rows in a staging area of `elems`
// elements, each staged row padded by one element against bank conflicts.
__device__ __forceinline__ int staging_columns(int elems, int rows) { return elems / rows - 1; }

// The sum over the thread's split group; every thread of the block calls it.
template <typename Acc>
__device__ __forceinline__ Acc sum_over_split(Acc v, int split) {
  for (int offset = split / 2; offset > 0; offset /= 2) {
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  }
  return v;
}

}  // namespace fastlstm
