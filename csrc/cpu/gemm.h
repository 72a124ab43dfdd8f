// The GEMMs of the CPU backend whose right operand is a weight used in place.
// at::mm would route fp32 to MKL, which re-packs the weight on every call
// (more work than the product itself for one step at small batch) and, on
// AMD CPUs, runs its AVX2 kernels; oneDNN's brgemm ukernel reads the weight
// as it lies and uses AVX-512 where the CPU has it.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace fastlstm::cpu {

// C[M, N] = A[M, K] . B[K, N] (+ C when accumulate), row-major with leading
// dimensions lda, ldb, ldc. C is split into fixed tiles spread over the thread
// pool, each tile one uninterrupted K reduction: the result does not depend
// on the thread count.
template <typename T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C,
          int64_t ldc, bool accumulate);

// One product of gemm_a_t: C[M, cols] (ldc) = Aᵀ . B[K, cols] (ldb).
template <typename T>
struct RightOperand {
  const T* b;
  int64_t ldb, cols;
  T* c;
  int64_t ldc;
};

// Aᵀ . B for each right operand, for A given as [K, M] (lda): the weight
// gradients dgatesᵀ . x and dgatesᵀ . h_prev, without a transposed copy of
// any operand. Each thread transposes its own row tiles of Aᵀ block by block
// into a small buffer and uses each block for every product; each element is
// one K reduction in fixed blocks, whatever the thread count.
template <typename T>
void gemm_a_t(int64_t M, int64_t K, const T* A, int64_t lda, const RightOperand<T>* products,
              int count);

// C[M, N] = A[M, K] . Wᵀ (+ C) for a weight W [N, K]: gemm() on w_t, W's
// transposed copy [K, N], when the caller made one (a weight used at every
// step), else ATen's mm on W as it lies (a single use, as in one LSTMCell
// step, where copying W costs more than the product).
template <typename T>
void gemm_weight_t(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const at::Tensor& w,
                   const at::Tensor& w_t, T* C, int64_t ldc, bool accumulate);

// Whether float GEMMs use oneDNN's brgemm ukernel (false: ATen mm).
// FASTLSTM_CPU_GEMM=aten forces the ATen path, for tests and comparisons.
bool gemm_uses_brgemm();

}  // namespace fastlstm::cpu
