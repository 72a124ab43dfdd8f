// Loads and stores between a storage type and its accumulation type. Torch
// builds CUDA code with the implicit half/bfloat16 conversions switched off,
// so every conversion is spelled out here, once.
#pragma once

#include "kernel_prelude.cuh"

#include "storage_types.h"

namespace fastlstm {

__device__ __forceinline__ float to_acc(float x) { return x; }
__device__ __forceinline__ double to_acc(double x) { return x; }

__device__ __forceinline__ float to_acc(half_t x) {
  __half h;
  memcpy(&h, &x, sizeof h);
  return __half2float(h);
}

__device__ __forceinline__ float to_acc(bfloat16_t x) {
  __nv_bfloat16 h;
  memcpy(&h, &x, sizeof h);
  return __bfloat162float(h);
}

template <typename T>
__device__ __forceinline__ T from_acc(acc_t<T> x) {
  return x;
}

template <>
__device__ __forceinline__ half_t from_acc<half_t>(float x) {
  const __half h = __float2half_rn(x);
  half_t out;
  memcpy(&out, &h, sizeof out);
  return out;
}

template <>
__device__ __forceinline__ bfloat16_t from_acc<bfloat16_t>(float x) {
  const __nv_bfloat16 h = __float2bfloat16_rn(x);
  bfloat16_t out;
  memcpy(&out, &h, sizeof out);
  return out;
}

}  // namespace fastlstm
