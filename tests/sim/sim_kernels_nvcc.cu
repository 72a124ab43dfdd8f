// The self-test kernels as nvcc sees them: tests/test_sim.py compiles this
// file for sm_80 with torch's flags, when nvcc is installed, so that the
// kernels stay plain CUDA. Nothing runs it.
#include "sim_kernels.cuh"

namespace simtest {

template __global__ void block_sum<true>(const float*, float*);
template __global__ void block_sum<false>(const float*, float*);

#define SIMTEST_WMMA_MATMUL(T, A, B)                                                          \
  template __global__ void wmma_matmul<T, wmma::A, wmma::B>(const T*, const T*, const float*, \
                                                            float*, int, int, int);
#define SIMTEST_WMMA_MATMULS(T)                \
  SIMTEST_WMMA_MATMUL(T, row_major, row_major) \
  SIMTEST_WMMA_MATMUL(T, row_major, col_major) \
  SIMTEST_WMMA_MATMUL(T, col_major, row_major) \
  SIMTEST_WMMA_MATMUL(T, col_major, col_major) \
  template __global__ void wmma_matmul_shared<T, 2>(const T*, const T*, float*, int, int);
SIMTEST_WMMA_MATMULS(__half)
SIMTEST_WMMA_MATMULS(__nv_bfloat16)
template __global__ void wmma_one_tile<16, 16, 16>(const __half*, const __half*, const float*,
                                                   float*);
template __global__ void wmma_one_tile<32, 8, 16>(const __half*, const __half*, const float*,
                                                  float*);
template __global__ void wmma_one_tile<8, 32, 16>(const __half*, const __half*, const float*,
                                                  float*);

}  // namespace simtest
