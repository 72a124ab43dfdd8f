// A stand-in for the CUDA driver (csrc/nvrtc/cuda_driver.h), linked into the
// executor probe in place of cuda_driver.cpp: an H100-like device whose
// launches are recorded instead of run, so that the NVRTC executor's host
// side (module loading, lookups, launch shapes, cooperative launches,
// shared-memory limits, occupancy) is tested without a GPU.
#include "fake_driver.h"

#include <c10/util/Exception.h>

#include <cstring>
#include <mutex>

namespace fastlstm::nvrtc {
namespace {

std::mutex mutex;
FakeDriverLog log;
bool recording = true;

CUresult get_error_string(CUresult, const char** message) {
  *message = "fake driver error";
  return 0;
}

CUresult device_attribute(int* value, int attribute, CUdevice) {
  switch (attribute) {
    case kMultiprocessorCount: *value = 132; break;
    case kComputeCapabilityMajor: *value = 9; break;
    case kComputeCapabilityMinor: *value = 0; break;
    case kCooperativeLaunch: *value = 1; break;
    case kMaxSharedMemoryPerBlockOptin: *value = 227 * 1024; break;
    default: return 1;
  }
  return 0;
}

CUcontext the_context() { return reinterpret_cast<CUcontext>(0x1000); }

CUresult primary_retain(CUcontext* c, CUdevice) {
  *c = the_context();
  return 0;
}
CUresult ctx_get(CUcontext* c) {
  *c = nullptr;  // as on a thread that never touched the device
  return 0;
}
CUresult ctx_set(CUcontext c) {
  std::lock_guard<std::mutex> lock(mutex);
  log.context_sets += c == the_context();
  return 0;
}

CUresult module_load(CUmodule* m, const void* image) {
  // A cubin is an ELF image.
  if (std::memcmp(image, "\x7f" "ELF", 4) != 0) return 200;  // CUDA_ERROR_INVALID_IMAGE
  std::lock_guard<std::mutex> lock(mutex);
  ++log.modules;
  *m = reinterpret_cast<CUmodule>(0x2000);
  return 0;
}

CUresult module_function(CUfunction* f, CUmodule, const char* name) {
  std::lock_guard<std::mutex> lock(mutex);
  log.functions.push_back(name);
  *f = reinterpret_cast<CUfunction>(log.functions.size());  // 1-based: never null
  return 0;
}

const std::string& name_of(CUfunction f) {
  return log.functions.at(reinterpret_cast<size_t>(f) - 1);
}

CUresult func_set_attribute(CUfunction f, int attribute, int value) {
  std::lock_guard<std::mutex> lock(mutex);
  if (attribute == kFuncMaxDynamicSharedSizeBytes) log.shared_limits[name_of(f)] = value;
  return 0;
}

CUresult occupancy(int* blocks, CUfunction f, int, size_t shared) {
  std::lock_guard<std::mutex> lock(mutex);
  const auto limit = log.shared_limits.find(name_of(f));
  const size_t allowed = limit == log.shared_limits.end() ? 48 * 1024 : limit->second;
  *blocks = shared <= allowed ? 1 : 0;
  return 0;
}

CUresult record(CUfunction f, unsigned gx, unsigned gy, unsigned bx, unsigned shared,
                CUstream stream, void** params, bool cooperative) {
  if (!recording) return params[0] != nullptr ? 0 : 1;
  std::lock_guard<std::mutex> lock(mutex);
  if (cooperative && gx * gy > 132u) return 720;  // CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE
  log.launches.push_back({name_of(f), gx, gy, bx, shared, cooperative,
                          reinterpret_cast<uintptr_t>(stream), params[0]});
  return 0;
}

CUresult launch(CUfunction f, unsigned gx, unsigned gy, unsigned, unsigned bx, unsigned, unsigned,
                unsigned shared, CUstream stream, void** params, void**) {
  return record(f, gx, gy, bx, shared, stream, params, false);
}

CUresult launch_cooperative(CUfunction f, unsigned gx, unsigned gy, unsigned, unsigned bx,
                            unsigned, unsigned, unsigned shared, CUstream stream,
                            void** params) {
  return record(f, gx, gy, bx, shared, stream, params, true);
}

const CudaDriver fake = {get_error_string, device_attribute, primary_retain, ctx_get, ctx_set,
                         module_load, module_function, func_set_attribute, occupancy, launch,
                         launch_cooperative};

}  // namespace

const CudaDriver& cuda_driver() { return fake; }

void check_driver(CUresult result, const char* what) {
  TORCH_CHECK(result == 0, "fastlstm: ", what, " failed: fake driver error (", result, ")");
}

FakeDriverLog take_fake_driver_log() {
  std::lock_guard<std::mutex> lock(mutex);
  FakeDriverLog taken = log;
  log.launches.clear();
  return taken;
}

void record_fake_launches(bool on) { recording = on; }

}  // namespace fastlstm::nvrtc
