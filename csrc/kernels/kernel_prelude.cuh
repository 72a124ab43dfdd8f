// First include of every kernel header. The kernels are written once and
// compiled twice: by nvcc for the GPU, and by the host compiler for the CPU
// SIMT emulator (csrc/sim), which runs them in the tests on machines without
// a GPU. Both see the same CUDA API: the runtime, cooperative groups,
// cuda::atomic_ref (flags between blocks),
// __half and __nv_bfloat16 with their explicit conversions, and WMMA
// (nvcuda::wmma, which needs sm_70 or newer). Only the spelling of dynamic
// shared memory differs between the two: an `extern __shared__` array has no
// C++ equivalent, so the emulator hands out the block's buffer through a
// function instead. Torch-free on purpose.
#pragma once
#if defined(__CUDACC__)
#if !defined(__CUDACC_RTC__)  // NVRTC: the runtime API is host code
#include <cuda_runtime.h>
#endif
#include <cooperative_groups.h>
#include <cuda/atomic>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>
#define FASTLSTM_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#else
#include "../sim/cuda_sim.h"
#include "../sim/cuda_sim_atomic.h"
#include "../sim/cuda_sim_fp16.h"
#include "../sim/cuda_sim_wmma.h"
#define FASTLSTM_DYNAMIC_SHARED(T, name) T* name = static_cast<T*>(::fastlstm::sim::dynamic_shared_memory())
#endif
