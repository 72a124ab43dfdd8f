#include "nvrtc_step_kernels.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <array>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "../kernels/dispatched_step_kernels.h"
#include "cuda_driver.h"
#include "kernel_program.h"

namespace fastlstm::nvrtc {
namespace {

constexpr int kMaxDevices = 64;
constexpr size_t kDefaultSharedLimit = 48 * 1024;

// A dense number per kernel instance, given at its first use, so that a
// launch finds its function by indexing rather than by name.
int slot_of_name(const std::string& name) {
  static std::mutex mutex;
  static std::map<std::string, int> slots;
  std::lock_guard<std::mutex> lock(mutex);
  return slots.emplace(name, static_cast<int>(slots.size())).first->second;
}

template <typename Tag>
int kernel_slot(Tag tag) {
  static const int slot = slot_of_name(name_expression(tag));
  return slot;
}

// One storage type's kernels loaded on one device.
struct LoadedKernels {
  std::vector<CUfunction> functions;  // by kernel_slot
  CUfunction function(int slot) const {
    TORCH_INTERNAL_ASSERT(slot < (int)functions.size() && functions[slot] != nullptr,
                          "fastlstm: an NVRTC kernel instance was not compiled");
    return functions[slot];
  }
};

struct Device {
  int index = -1;
  int arch = 0, multiprocessors = 1, optin_shared = 0;
  bool cooperative = false;
  std::array<std::once_flag, 4> once;
  std::array<LoadedKernels, 4> kernels;  // by StorageType
};

int attribute(int which, int device) {
  int value = 0;
  check_driver(cuda_driver().DeviceGetAttribute(&value, which, device), "a device query");
  return value;
}

// The device's primary context (torch's) current on this thread.
void use_primary_context(int device) {
  const CudaDriver& d = cuda_driver();
  CUcontext primary = nullptr, current = nullptr;
  check_driver(d.DevicePrimaryCtxRetain(&primary, device), "retaining the primary context");
  check_driver(d.CtxGetCurrent(&current), "reading the current context");
  if (current != primary) check_driver(d.CtxSetCurrent(primary), "setting the context");
}

Device& device_state(int index) {
  TORCH_CHECK(index >= 0 && index < kMaxDevices, "fastlstm: CUDA device ", index,
              " is beyond the ", kMaxDevices, " the NVRTC executor serves");
  static std::array<Device, kMaxDevices> devices;
  static std::array<std::once_flag, kMaxDevices> once;
  std::call_once(once[index], [&] {
    Device& d = devices[index];
    d.index = index;
    d.arch = 10 * attribute(kComputeCapabilityMajor, index) +
             attribute(kComputeCapabilityMinor, index);
    d.multiprocessors = attribute(kMultiprocessorCount, index);
    d.optin_shared = attribute(kMaxSharedMemoryPerBlockOptin, index);
    d.cooperative = attribute(kCooperativeLaunch, index) != 0;
  });
  return devices[index];
}

LoadedKernels load_kernels(const Device& device, StorageType type) {
  const CompiledKernels compiled = cached_kernels(type, device.arch);
  use_primary_context(device.index);
  const CudaDriver& d = cuda_driver();
  CUmodule module = nullptr;
  check_driver(d.ModuleLoadData(&module, compiled.cubin.data()), "loading the NVRTC kernels");
  LoadedKernels loaded;
  for (const auto& [name, lowered] : compiled.lowered) {
    const size_t slot = static_cast<size_t>(slot_of_name(name));
    if (loaded.functions.size() <= slot) loaded.functions.resize(slot + 1, nullptr);
    check_driver(d.ModuleGetFunction(&loaded.functions[slot], module, lowered.c_str()),
                 "looking up an NVRTC kernel");
  }
  return loaded;
}

const LoadedKernels& kernels_of(Device& device, StorageType type) {
  const int t = static_cast<int>(type);
  std::call_once(device.once[t], [&] { device.kernels[t] = load_kernels(device, type); });
  return device.kernels[t];
}

void allow_shared(CUfunction f, size_t bytes) {
  if (bytes > kDefaultSharedLimit) {
    check_driver(cuda_driver().FuncSetAttribute(f, kFuncMaxDynamicSharedSizeBytes, (int)bytes),
                 "raising a kernel's shared memory limit");
  }
}

// Launches what the dispatch hands out: cooperative launches with exactly
// the planned grid (the driver refuses one that does not fit, never shrinks
// it).
struct DriverLaunch {
  const LoadedKernels& kernels;
  CUstream stream;
  template <typename Tag, typename... Args>
  void operator()(const LaunchConfig& c, Tag tag, const Args&... args) const {
    const CUfunction f = kernels.function(kernel_slot(tag));
    allow_shared(f, c.shared_bytes);
    void* argv[] = {const_cast<void*>(static_cast<const void*>(&args))...};
    const CudaDriver& d = cuda_driver();
    if (c.cooperative) {
      check_driver(d.LaunchCooperativeKernel(f, c.grid_x, c.grid_y, 1, c.threads, 1, 1,
                                             (unsigned)c.shared_bytes, stream, argv),
                   "a cooperative kernel launch");
    } else {
      check_driver(d.LaunchKernel(f, c.grid_x, c.grid_y, 1, c.threads, 1, 1,
                                  (unsigned)c.shared_bytes, stream, argv, nullptr),
                   "a kernel launch");
    }
  }
};

class NvrtcStepKernels final : public DispatchedStepKernels<NvrtcStepKernels> {
 public:
  NvrtcStepKernels(Device& device, CUstream stream) : device_(device), stream_(stream) {}

  int multiprocessors() const override { return device_.multiprocessors; }

  int persistent_capacity(StorageType type, PersistentKernel kernel,
                          size_t shared) const override {
    if (!device_.cooperative || shared > (size_t)device_.optin_shared) return 0;
    return visit_storage(type, [&](auto tag) {
      using T = decltype(tag);
      const LoadedKernels& k = loaded(type);
      auto blocks = [&](auto instance) {
        return resident_blocks(k, instance, shared) * device_.multiprocessors;
      };
      switch (kernel) {
        case PersistentKernel::kBackward: return blocks(BackwardPersistentKernel<T>{});
        case PersistentKernel::kBackward2d:
          return std::min(blocks(BackwardPersistent2dKernel<T, 1>{}),
                          blocks(BackwardPersistent2dKernel<T, 4>{}));
        case PersistentKernel::kForward2d:
          return std::min(std::min(blocks(ForwardPersistent2dKernel<T, 1, true>{}),
                                   blocks(ForwardPersistent2dKernel<T, 1, false>{})),
                          std::min(blocks(ForwardPersistent2dKernel<T, 4, true>{}),
                                   blocks(ForwardPersistent2dKernel<T, 4, false>{})));
        case PersistentKernel::kForward2dTensorCore:
          if constexpr (kHasTensorCoreKernels<T> || std::is_same_v<T, float>) {
            return tensor_core_capacity<T>(blocks, false);
          }
          return 0;
        case PersistentKernel::kBackward2dTensorCore:
          if constexpr (kHasTensorCoreKernels<T> || std::is_same_v<T, float>) {
            return tensor_core_capacity<T>(blocks, true);
          }
          return 0;
        default:
          return std::min(blocks(ForwardPersistentKernel<T, true>{}),
                          blocks(ForwardPersistentKernel<T, false>{}));
      }
    });
  }

 private:
  friend class DispatchedStepKernels<NvrtcStepKernels>;
  const LoadedKernels& loaded(StorageType type) const { return kernels_of(device_, type); }
  DriverLaunch launcher(StorageType type) const { return {loaded(type), stream_}; }

  // Blocks of one instance that fit on one SM with this dynamic shared memory.
  template <typename Tag>
  static int resident_blocks(const LoadedKernels& k, Tag tag, size_t shared);

  Device& device_;
  CUstream stream_;
};

template <typename Tag>
int NvrtcStepKernels::resident_blocks(const LoadedKernels& k, Tag tag, size_t shared) {
  const CUfunction f = k.function(kernel_slot(tag));
  allow_shared(f, shared);
  int per_sm = 0;
  check_driver(cuda_driver().OccupancyMaxActiveBlocksPerMultiprocessor(
                   &per_sm, f, PersistentTile::kThreads, shared),
               "an occupancy query");
  return per_sm;
}

}  // namespace

std::unique_ptr<StepKernels> nvrtc_step_kernels(int device, void* stream) {
  return std::make_unique<NvrtcStepKernels>(device_state(device), static_cast<CUstream>(stream));
}

}  // namespace fastlstm::nvrtc
