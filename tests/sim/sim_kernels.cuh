// Self-test kernels for the CPU SIMT emulator (csrc/sim), in plain CUDA:
// they also compile with nvcc. tests/sim/sim_selftest.cpp runs them and
// checks the results on the host; tests/test_sim.py drives that in every
// scheduling order. Some kernels are wrong on purpose, as marked.
#pragma once

#include <type_traits>

#include "../../csrc/kernels/kernel_prelude.cuh"

namespace simtest {

namespace cg = cooperative_groups;

constexpr unsigned kFullMask = 0xffffffffu;

// Sum of each block's blockDim.x (a power of 2, at most 256) values by a
// shared-memory tree. kAllBarriers = false plants the classic bug: the last
// five steps run "warp-synchronously", without the barriers that independent
// thread scheduling requires.
template <bool kAllBarriers>
__global__ void block_sum(const float* in, float* out) {
  __shared__ float partial[256];
  const unsigned t = threadIdx.x;
  partial[t] = in[blockIdx.x * blockDim.x + t];
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (t < stride) partial[t] += partial[t + stride];
    if (kAllBarriers || stride > 32) __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = partial[0];
}

__device__ __forceinline__ float warp_sum_down(unsigned mask, float v, int width) {
  for (int offset = width / 2; offset > 0; offset /= 2)
    v += __shfl_down_sync(mask, v, offset, width);
  return v;
}

__device__ __forceinline__ int warp_sum_xor(unsigned mask, int v, int width) {
  for (int lane_mask = width / 2; lane_mask > 0; lane_mask /= 2)
    v += __shfl_xor_sync(mask, v, lane_mask, width);
  return v;
}

// Per thread, 8 outputs (see sim_selftest.cpp for the expected values):
// reductions over full warps, and over the last, partial warp with its exact
// mask; shuffles within 8- and 16-lane segments; an 8-byte broadcast.
__global__ void shuffle_reduction(const float* fin, const int* iin, double* out) {
  const unsigned t = threadIdx.x, lane = t % warpSize;
  const unsigned warp_first = t - lane;
  const unsigned lanes = min(32u, blockDim.x - warp_first);
  const unsigned mask = lanes == 32 ? kFullMask : (1u << lanes) - 1;
  const unsigned i = blockIdx.x * blockDim.x + t;
  const float f = fin[i];
  const int n = iin[i];
  double* o = out + 8 * size_t(i);
  if (lanes == 32) {
    o[0] = warp_sum_down(mask, f, 32);                      // lane 0 holds the warp's sum
    o[1] = warp_sum_xor(mask, n, 32);                       // every lane holds it
    o[2] = warp_sum_xor(mask, n, 8);                        // sums of 8-lane segments
    o[3] = __shfl_sync(mask, int(lane), int(lane) + 3, 8);  // rotation inside segments
    o[4] = __shfl_down_sync(mask, int(lane), 5, 16);        // own value past the segment
    o[5] = __shfl_up_sync(mask, int(lane), 3, 16);
  } else {
    // Inclusive scan: every source lane (lane - d) exists and is in the mask.
    float scan = f;
    for (unsigned d = 1; d < 32; d *= 2) {
      const float below = __shfl_up_sync(mask, scan, d);
      if (lane >= d) scan += below;
    }
    o[0] = scan;
    o[1] = __shfl_sync(mask, n, lanes - 1);
    o[2] = warp_sum_xor(mask, n, 4);  // 4-lane segments, when lanes % 4 == 0
    o[3] = o[4] = o[5] = 0;
  }
  const double d = double(f) * 1e-3 + double(n);
  o[6] = __shfl_sync(mask, d, 1);  // an 8-byte value
  o[7] = __shfl_sync(mask, 1ull << lane, lanes - 1 - lane) == (1ull << (lanes - 1 - lane));
}

// C[m x n] = A[m x k] B[k x n], row-major, through 16 x 16 shared tiles.
constexpr int kTile = 16;
__global__ void __launch_bounds__(kTile* kTile)
    tiled_matmul(const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ c,
                 int m, int n, int k) {
  __shared__ float a_tile[kTile][kTile + 1];
  __shared__ float b_tile[kTile][kTile + 1];
  const int row = blockIdx.y * kTile + threadIdx.y, col = blockIdx.x * kTile + threadIdx.x;
  float acc = 0.0f;
  for (int k0 = 0; k0 < k; k0 += kTile) {
    const int ak = k0 + threadIdx.x, bk = k0 + threadIdx.y;
    a_tile[threadIdx.y][threadIdx.x] = row < m && ak < k ? __ldg(a + size_t(row) * k + ak) : 0.0f;
    b_tile[threadIdx.y][threadIdx.x] = bk < k && col < n ? __ldg(b + size_t(bk) * n + col) : 0.0f;
    __syncthreads();
    for (int kk = 0; kk < kTile; ++kk)
      acc = fmaf(a_tile[threadIdx.y][kk], b_tile[kk][threadIdx.x], acc);
    __syncthreads();
  }
  if (row < m && col < n) c[size_t(row) * n + col] = acc;
}

// A ring of gridDim.x * blockDim.x cells, iterated `steps` times:
// next[i] = prev[i-1] + 2 prev[i] + prev[i+1] (mod 2^32). The neighbours at
// block edges come from other blocks, written before the last grid barrier.
__global__ void ring_stencil(unsigned* a, unsigned* b, int steps) {
  __shared__ unsigned tile[1024];
  cg::grid_group grid = cg::this_grid();
  cg::thread_block block = cg::this_thread_block();
  const unsigned n = unsigned(grid.size()), i = unsigned(grid.thread_rank());
  const unsigned t = block.thread_rank();
  for (int step = 0; step < steps; ++step) {
    const unsigned* src = step % 2 ? b : a;
    unsigned* dst = step % 2 ? a : b;
    tile[t] = src[i];
    block.sync();
    const unsigned left = t > 0 ? tile[t - 1] : src[(i + n - 1) % n];
    const unsigned right = t + 1 < block.size() ? tile[t + 1] : src[(i + 1) % n];
    dst[i] = left + 2 * tile[t] + right;
    grid.sync();
  }
}

// out[i] = in[mirror] + 2 in[mirror] through dynamic shared memory of
// 2 blockDim.x + 1 floats; the last one is never written, so it must read as
// the emulator's poison (NaN), reported in poisoned[blockIdx.x].
__global__ void dynamic_mirror(const float* in, float* out, int* poisoned) {
  FASTLSTM_DYNAMIC_SHARED(float, smem);
  const unsigned t = threadIdx.x, n = blockDim.x, i = blockIdx.x * n + t;
  smem[t] = in[i];
  smem[n + t] = 2 * in[i];
  __syncthreads();
  out[i] = smem[n - 1 - t] + smem[2 * n - 1 - t];
  if (t == 0) poisoned[blockIdx.x] = smem[2 * n] != smem[2 * n];
}

// Votes over full warps and the last, partial warp: out[4 i ...] = ballot,
// all, any, activemask for the predicate in[i] % 3 == 0.
__global__ void votes(const int* in, unsigned* out) {
  const unsigned t = threadIdx.x, lane = t % warpSize;
  const unsigned lanes = min(32u, blockDim.x - (t - lane));
  const unsigned mask = lanes == 32 ? kFullMask : (1u << lanes) - 1;
  const unsigned i = blockIdx.x * blockDim.x + t;
  const int predicate = in[i] % 3 == 0;
  out[4 * i + 0] = __ballot_sync(mask, predicate);
  out[4 * i + 1] = __all_sync(mask, predicate);
  out[4 * i + 2] = __any_sync(mask, predicate);
  out[4 * i + 3] = __activemask();
  __syncwarp(mask);
}

// Threads past n leave at once; the barrier counts them as arrived, as the
// hardware does, and the others exchange values through shared memory.
__global__ void reverse_first_n(const int* in, int* out, unsigned n) {
  __shared__ int values[1024];
  const unsigned t = threadIdx.x;
  if (t >= n) return;
  values[t] = in[t];
  __syncthreads();
  out[t] = values[n - 1 - t];
}

// ---- 16-bit floats and WMMA ------------------------------------------------

namespace wmma = nvcuda::wmma;

constexpr int kWmmaTile = 16;  // m = n = k

// Per value: through __half and back, and through __nv_bfloat16 and back.
__global__ void round_trip_16_bit(const float* in, float* via_half, float* via_bfloat16) {
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  via_half[i] = __half2float(__float2half_rn(in[i]));
  via_bfloat16[i] = __bfloat162float(__float2bfloat16_rn(in[i]));
}

// A variable, not a function: nvcc calls no host function from a kernel.
template <typename Layout>
constexpr bool kRowMajor = std::is_same<Layout, wmma::row_major>::value;

// D = 2 (A B + C) for A m x k and B k x n, each stored as its fragment's
// layout reads it (leading dimension k or m for A, n or k for B), C and D
// m x n row-major; all multiples of 16. One warp per 16 x 16 tile of D, read
// straight from global memory; whole warps past the last tile leave at once.
template <typename T, typename ALayout, typename BLayout>
__global__ void wmma_matmul(const T* a, const T* b, const float* c, float* d, int m, int n, int k) {
  const int warp = int((blockIdx.x * blockDim.x + threadIdx.x) / warpSize);
  const int tiles_n = n / kWmmaTile;
  if (warp >= m / kWmmaTile * tiles_n) return;
  const int row = warp / tiles_n * kWmmaTile, col = warp % tiles_n * kWmmaTile;
  const bool a_row_major = kRowMajor<ALayout>, b_row_major = kRowMajor<BLayout>;
  const unsigned lda = a_row_major ? k : m, ldb = b_row_major ? n : k;
  wmma::fragment<wmma::accumulator, kWmmaTile, kWmmaTile, kWmmaTile, float> acc;
  wmma::load_matrix_sync(acc, c + size_t(row) * n + col, n, wmma::mem_row_major);
  for (int i = 0; i < k; i += kWmmaTile) {
    wmma::fragment<wmma::matrix_a, kWmmaTile, kWmmaTile, kWmmaTile, T, ALayout> a_frag;
    wmma::fragment<wmma::matrix_b, kWmmaTile, kWmmaTile, kWmmaTile, T, BLayout> b_frag;
    wmma::load_matrix_sync(a_frag,
                           a + (a_row_major ? size_t(row) * lda + i : size_t(i) * lda + row), lda);
    wmma::load_matrix_sync(b_frag,
                           b + (b_row_major ? size_t(i) * ldb + col : size_t(col) * ldb + i), ldb);
    wmma::mma_sync(acc, a_frag, b_frag, acc);
  }
  for (int e = 0; e < acc.num_elements; ++e) acc.x[e] = 2.0f * acc.x[e];  // the same in every lane
  wmma::store_matrix_sync(d + size_t(row) * n + col, acc, n, wmma::mem_row_major);
}

// D = A B for A m x k row-major and B k x n column-major, by blocks of
// kWarps warps over 16 rows x 16 kWarps columns of D: the warps share each
// 16 x 16 tile of A, staged in shared memory with padded rows, and each warp
// stages its tile of D column-major in shared memory, from where its lanes
// write it out row by row.
template <typename T, int kWarps>
__global__ void wmma_matmul_shared(const T* a, const T* b, float* d, int n, int k) {
  constexpr int kPaddedA = kWmmaTile + 8;  // ldm: a multiple of 8 16-bit values
  constexpr int kPaddedD = kWmmaTile + 4;  // a multiple of 4 floats
  __shared__ __align__(32) T a_tile[kWmmaTile * kPaddedA];
  __shared__ __align__(32) float d_tiles[kWarps][kWmmaTile * kPaddedD];
  const int warp = int(threadIdx.x / warpSize), lane = int(threadIdx.x % warpSize);
  const int row = blockIdx.y * kWmmaTile, col = (blockIdx.x * kWarps + warp) * kWmmaTile;
  wmma::fragment<wmma::accumulator, kWmmaTile, kWmmaTile, kWmmaTile, float> acc;
  wmma::fill_fragment(acc, 0.0f);
  for (int i = 0; i < k; i += kWmmaTile) {
    for (int e = threadIdx.x; e < kWmmaTile * kWmmaTile; e += blockDim.x) {
      const int r = e / kWmmaTile, c = e % kWmmaTile;
      a_tile[r * kPaddedA + c] = a[size_t(row + r) * k + i + c];
    }
    __syncthreads();
    wmma::fragment<wmma::matrix_a, kWmmaTile, kWmmaTile, kWmmaTile, T, wmma::row_major> a_frag;
    wmma::fragment<wmma::matrix_b, kWmmaTile, kWmmaTile, kWmmaTile, T, wmma::col_major> b_frag;
    wmma::load_matrix_sync(a_frag, a_tile, kPaddedA);
    wmma::load_matrix_sync(b_frag, b + size_t(col) * k + i, k);
    wmma::mma_sync(acc, a_frag, b_frag, acc);
    __syncthreads();  // every warp has read a_tile before the next one overwrites it
  }
  float* staged = d_tiles[warp];
  wmma::store_matrix_sync(staged, acc, kPaddedD, wmma::mem_col_major);
  __syncwarp();  // lanes read what other lanes' share of the store wrote
  for (int e = lane; e < kWmmaTile * kWmmaTile; e += warpSize) {
    const int r = e / kWmmaTile, c = e % kWmmaTile;
    d[size_t(row + r) * n + col + c] = staged[c * kPaddedD + r];
  }
}

// D = A B + C for one m x n x k tile, with A row-major, B and C
// column-major, D row-major, each with its lines packed.
template <int M, int N, int K>
__global__ void wmma_one_tile(const __half* a, const __half* b, const float* c, float* d) {
  wmma::fragment<wmma::matrix_a, M, N, K, __half, wmma::row_major> a_frag;
  wmma::fragment<wmma::matrix_b, M, N, K, __half, wmma::col_major> b_frag;
  wmma::fragment<wmma::accumulator, M, N, K, float> acc;
  wmma::load_matrix_sync(a_frag, a, K);
  wmma::load_matrix_sync(b_frag, b, K);
  wmma::load_matrix_sync(acc, c, M, wmma::mem_col_major);
  wmma::mma_sync(acc, a_frag, b_frag, acc);
  wmma::store_matrix_sync(d, acc, N, wmma::mem_row_major);
}

// `count` products of one pair of 16 x 16 tiles per warp, for timing.
__global__ void wmma_mma_loop(const __half* a, const __half* b, float* d, int count) {
  wmma::fragment<wmma::matrix_a, kWmmaTile, kWmmaTile, kWmmaTile, __half, wmma::row_major> a_frag;
  wmma::fragment<wmma::matrix_b, kWmmaTile, kWmmaTile, kWmmaTile, __half, wmma::col_major> b_frag;
  wmma::fragment<wmma::accumulator, kWmmaTile, kWmmaTile, kWmmaTile, float> acc;
  wmma::load_matrix_sync(a_frag, a, kWmmaTile);
  wmma::load_matrix_sync(b_frag, b, kWmmaTile);
  wmma::fill_fragment(acc, 0.0f);
  for (int i = 0; i < count; ++i) wmma::mma_sync(acc, a_frag, b_frag, acc);
  const int warp = int(threadIdx.x / warpSize);
  wmma::store_matrix_sync(d + warp * kWmmaTile * kWmmaTile, acc, kWmmaTile, wmma::mem_row_major);
}

// Loads a 16 x 16 tile of A (row-major, leading dimension `ldm`) from
// `offset` elements into `a`, and stores it times the identity's tile of B
// into out (16 x 16 floats, row-major), so that out holds the tile read.
__device__ __forceinline__ void wmma_copy_tile(const __half* a, size_t offset, unsigned ldm,
                                               const __half* identity, float* out) {
  wmma::fragment<wmma::matrix_a, kWmmaTile, kWmmaTile, kWmmaTile, __half, wmma::row_major> a_frag;
  wmma::fragment<wmma::matrix_b, kWmmaTile, kWmmaTile, kWmmaTile, __half, wmma::row_major> b_frag;
  wmma::fragment<wmma::accumulator, kWmmaTile, kWmmaTile, kWmmaTile, float> acc;
  wmma::fill_fragment(acc, 0.0f);
  wmma::load_matrix_sync(a_frag, a + offset, ldm);
  wmma::load_matrix_sync(b_frag, identity, kWmmaTile);
  wmma::mma_sync(acc, a_frag, b_frag, acc);
  wmma::store_matrix_sync(out, acc, kWmmaTile, wmma::mem_row_major);
}

// ---- Kernels that misuse CUDA: the emulator must report them -------------

// Half the warp waits at __syncthreads, the other half at __syncwarp.
__global__ void divergent_barrier(int* out) {
  if (threadIdx.x % 32 < 16) {
    __syncthreads();
  } else {
    __syncwarp();
  }
  out[threadIdx.x] = 1;
}

// Lane 31 leaves before the shuffle its mask names it in.
__global__ void shuffle_with_exited_lane(int* out) {
  if (threadIdx.x == 31) return;
  out[threadIdx.x] = __shfl_down_sync(kFullMask, int(threadIdx.x), 1);
}

// A grid barrier needs a cooperative launch.
__global__ void grid_sync_kernel(int* out) {
  cg::this_grid().sync();
  out[threadIdx.x] = 1;
}

// Lanes of one mask reach different collectives.
__global__ void mismatched_collectives(int* out) {
  if (threadIdx.x % 2) {
    __syncwarp();
  } else {
    out[threadIdx.x] = __ballot_sync(kFullMask, 1);
  }
}

// Lane 8 reads lane 16, which is outside the mask.
__global__ void shuffle_source_outside_mask(int* out) {
  if (threadIdx.x < 16) out[threadIdx.x] = __shfl_down_sync(0xffffu, int(threadIdx.x), 8);
}

// A full mask in a block of 20 threads names lanes that do not exist.
__global__ void mask_beyond_partial_warp(int* out) {
  out[threadIdx.x] = __shfl_sync(kFullMask, int(threadIdx.x), 0);
}

// TF32: d = a b for a 16 x 32 row-major, b 32 x 16 column-major (ldm 32),
// over four k steps of 8, the multiplicands rounded by __float_to_tf32
// (kRound) or, planted, left for the Tensor Cores to truncate.
template <bool kRound>
__global__ void wmma_tf32_matmul(const float* a, const float* b, float* d) {
  wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa;
  wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major> fb;
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc;
  wmma::fill_fragment(acc, 0.0f);
  for (int k0 = 0; k0 < 32; k0 += 8) {
    wmma::load_matrix_sync(fa, a + k0, 32);
    wmma::load_matrix_sync(fb, b + k0, 32);
    if (kRound) {
      for (int t = 0; t < fa.num_elements; ++t) fa.x[t] = wmma::__float_to_tf32(fa.x[t]);
      for (int t = 0; t < fb.num_elements; ++t) fb.x[t] = wmma::__float_to_tf32(fb.x[t]);
    }
    wmma::mma_sync(acc, fa, fb, acc);
  }
  wmma::store_matrix_sync(d, acc, 16, wmma::mem_row_major);
}

// ---- Flags between blocks: block b takes block b-1's values of each step
// (block 0 starts from the step number), after waiting for its flag -------

enum class Handoff {
  kCorrect,            // acquire load / release store, thread 0 after the barrier
  kFencedRelaxed,      // relaxed load then __threadfence(); __threadfence() then relaxed store
  kNoWait,             // planted bug: reads without waiting for the flag
  kRelaxedStore,       // planted bug: relaxed store with no fence (missing release)
  kRelaxedLoad,        // planted bug: relaxed load with no fence (missing acquire)
  kNeverPublished,     // planted bug: block 0 never sets its flag
};

__device__ __forceinline__ void wait_for_flag(int* flag, int target, Handoff h) {
  if (threadIdx.x == 0 && h != Handoff::kNoWait) {
    cuda::atomic_ref<int, cuda::thread_scope_device> f(*flag);
    const bool acquire = h == Handoff::kCorrect || h == Handoff::kRelaxedStore ||
                         h == Handoff::kNeverPublished;
    while (f.load(acquire ? cuda::memory_order_acquire : cuda::memory_order_relaxed) < target)
      __nanosleep(64);
    if (h == Handoff::kFencedRelaxed) __threadfence();
  }
  __syncthreads();
}

__device__ __forceinline__ void publish_flag(int* flag, int value, Handoff h) {
  __syncthreads();  // every thread's values are written
  if (threadIdx.x == 0 && !(h == Handoff::kNeverPublished && blockIdx.x == 0)) {
    cuda::atomic_ref<int, cuda::thread_scope_device> f(*flag);
    if (h == Handoff::kFencedRelaxed) __threadfence();
    const bool release = h != Handoff::kRelaxedStore && h != Handoff::kFencedRelaxed;
    f.store(value, release ? cuda::memory_order_release : cuda::memory_order_relaxed);
  }
}

// values[s][b][t] = (b == 0 ? 7 s + t : 3 values[s][b-1][t] + 1): a pipeline
// through the blocks of a cooperative launch, one flag per block.
__global__ void flag_pipeline(int* values, int* flags, int steps, Handoff h) {
  const unsigned b = blockIdx.x, t = threadIdx.x, n = blockDim.x * gridDim.x;
  for (int s = 0; s < steps; ++s) {
    int* step_values = values + size_t(s) * n;
    if (b > 0) wait_for_flag(&flags[b - 1], s + 1, h);
    const int in = b == 0 ? 7 * s + int(t) : step_values[(b - 1) * blockDim.x + t];
    step_values[b * blockDim.x + t] = b == 0 ? in : 3 * in + 1;
    publish_flag(&flags[b], s + 1, h);
  }
}

// Block 1 leaves while the others wait at the grid barrier.
__global__ void block_leaves_grid(int* out) {
  if (blockIdx.x == 1) return;
  cg::this_grid().sync();
  out[blockIdx.x] = 1;
}

// ---- WMMA misuse: a is a 32-byte aligned 64 x 64 __half matrix, identity
// the 16 x 16 one, out a 32-byte aligned float buffer of 64 x 64 ----------

// The correct use the misuses below depart from: tile (1, 1) of a.
__global__ void wmma_copy(const __half* a, const __half* identity, float* out) {
  wmma_copy_tile(a, 16 * 64 + 16, 64, identity, out);
}

// Only half of the warp loads: the other half has left.
__global__ void wmma_half_warp(const __half* a, const __half* identity, float* out) {
  if (threadIdx.x % 32 < 16) wmma_copy_tile(a, 0, 64, identity, out);
}

// The block's second warp has 16 lanes.
__global__ void wmma_partial_warp(const __half* a, const __half* identity, float* out) {
  wmma_copy_tile(a, 0, 64, identity, out);
}

// 8 elements (16 bytes) past an aligned address.
__global__ void wmma_misaligned_pointer(const __half* a, const __half* identity, float* out) {
  wmma_copy_tile(a, 8, 64, identity, out);
}

// ldm 20 is not a multiple of 8 __half values.
__global__ void wmma_ldm_not_multiple(const __half* a, const __half* identity, float* out) {
  wmma_copy_tile(a, 0, 20, identity, out);
}

// Lane 5 passes another leading dimension.
__global__ void wmma_lane_dependent_ldm(const __half* a, const __half* identity, float* out) {
  wmma_copy_tile(a, 0, threadIdx.x == 5 ? 24 : 64, identity, out);
}

// x[0] depends on the lane, whose share of the tile CUDA leaves unspecified.
__global__ void wmma_lane_dependent_fragment(const __half*, const __half*, float* out) {
  wmma::fragment<wmma::accumulator, kWmmaTile, kWmmaTile, kWmmaTile, float> acc;
  wmma::fill_fragment(acc, 0.0f);
  acc.x[0] = float(threadIdx.x);
  wmma::store_matrix_sync(out, acc, kWmmaTile, wmma::mem_row_major);
}

// Odd lanes reach a __syncwarp while even lanes load a tile.
__global__ void wmma_mixed_with_syncwarp(const __half* a, const __half* identity, float* out) {
  if (threadIdx.x % 2) {
    __syncwarp();
  } else {
    wmma_copy_tile(a, 0, 64, identity, out);
  }
}

// Rows 8 floats apart overlap a 16-column tile.
__global__ void wmma_overlapping_store(const __half*, const __half*, float* out) {
  wmma::fragment<wmma::accumulator, kWmmaTile, kWmmaTile, kWmmaTile, float> acc;
  wmma::fill_fragment(acc, 1.0f);
  wmma::store_matrix_sync(out, acc, 8, wmma::mem_row_major);
}

// Ten barriers, for timing the emulator.
__global__ void ten_barriers(float* out) {
  __shared__ float s[1024];
  float v = float(threadIdx.x);
  for (int i = 0; i < 5; ++i) {
    s[threadIdx.x] = v;
    __syncthreads();
    v += s[(threadIdx.x + 1) % blockDim.x];
    __syncthreads();
  }
  out[blockIdx.x * blockDim.x + threadIdx.x] = v;
}

}  // namespace simtest
