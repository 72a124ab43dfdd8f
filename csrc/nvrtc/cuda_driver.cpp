#include "cuda_driver.h"

#include <c10/util/Exception.h>

#include <memory>

#include "dynamic_library.h"

namespace fastlstm::nvrtc {
namespace {

struct LoadedDriver {
  DynamicLibrary library;
  CudaDriver api;
  explicit LoadedDriver(const std::string& path) : library(path, "the CUDA driver") {
    library.bind(api.GetErrorString, "cuGetErrorString");
    library.bind(api.DeviceGetAttribute, "cuDeviceGetAttribute");
    library.bind(api.DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    library.bind(api.CtxGetCurrent, "cuCtxGetCurrent");
    library.bind(api.CtxSetCurrent, "cuCtxSetCurrent");
    library.bind(api.ModuleLoadData, "cuModuleLoadData");
    library.bind(api.ModuleGetFunction, "cuModuleGetFunction");
    library.bind(api.FuncSetAttribute, "cuFuncSetAttribute");
    library.bind(api.OccupancyMaxActiveBlocksPerMultiprocessor,
                 "cuOccupancyMaxActiveBlocksPerMultiprocessor");
    library.bind(api.LaunchKernel, "cuLaunchKernel");
    library.bind(api.LaunchCooperativeKernel, "cuLaunchCooperativeKernel");
  }
};

}  // namespace

const CudaDriver& cuda_driver() {
  static const std::unique_ptr<LoadedDriver> loaded =
      std::make_unique<LoadedDriver>("libcuda.so.1");
  return loaded->api;
}

void check_driver(CUresult result, const char* what) {
  if (result == 0) return;
  const char* message = nullptr;
  cuda_driver().GetErrorString(result, &message);
  TORCH_CHECK(false, "fastlstm: ", what, " failed: ", message ? message : "unknown error", " (",
              result, ")");
}

}  // namespace fastlstm::nvrtc
