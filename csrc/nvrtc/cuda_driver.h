// The part of the CUDA driver API the NVRTC executor uses, declared here
// (cuda.h need not be present at build time) and bound from libcuda.so.1,
// which comes with the GPU driver: loading cubins, looking up their
// functions, occupancy, and launches on torch's streams.
#pragma once

#include <stddef.h>

namespace fastlstm::nvrtc {

using CUresult = int;
using CUdevice = int;
using CUcontext = struct CUctx_st*;
using CUmodule = struct CUmod_st*;
using CUfunction = struct CUfunc_st*;
using CUstream = struct CUstream_st*;

// Values from cuda.h.
enum DeviceAttribute : int {
  kMultiprocessorCount = 16,
  kComputeCapabilityMajor = 75,
  kComputeCapabilityMinor = 76,
  kCooperativeLaunch = 95,
  kMaxSharedMemoryPerBlockOptin = 97,
};
constexpr int kFuncMaxDynamicSharedSizeBytes = 8;

struct CudaDriver {
  CUresult (*GetErrorString)(CUresult, const char**);
  CUresult (*DeviceGetAttribute)(int*, int attribute, CUdevice);
  CUresult (*DevicePrimaryCtxRetain)(CUcontext*, CUdevice);
  CUresult (*CtxGetCurrent)(CUcontext*);
  CUresult (*CtxSetCurrent)(CUcontext);
  CUresult (*ModuleLoadData)(CUmodule*, const void* image);
  CUresult (*ModuleGetFunction)(CUfunction*, CUmodule, const char* name);
  CUresult (*FuncSetAttribute)(CUfunction, int attribute, int value);
  CUresult (*OccupancyMaxActiveBlocksPerMultiprocessor)(int*, CUfunction, int block_size,
                                                        size_t dynamic_shared);
  CUresult (*LaunchKernel)(CUfunction, unsigned grid_x, unsigned grid_y, unsigned grid_z,
                           unsigned block_x, unsigned block_y, unsigned block_z,
                           unsigned shared_bytes, CUstream, void** params, void** extra);
  CUresult (*LaunchCooperativeKernel)(CUfunction, unsigned grid_x, unsigned grid_y,
                                      unsigned grid_z, unsigned block_x, unsigned block_y,
                                      unsigned block_z, unsigned shared_bytes, CUstream,
                                      void** params);
};

// Bound from libcuda.so.1 at first use.
const CudaDriver& cuda_driver();

// Throws with the driver's message where result is not CUDA_SUCCESS.
void check_driver(CUresult result, const char* what);

}  // namespace fastlstm::nvrtc
