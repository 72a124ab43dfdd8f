#include "emulated_step_kernels.h"

#include <algorithm>

#include "../kernels/dispatched_step_kernels.h"
#include "../kernels/kernel_entries.cuh"

namespace fastlstm::emulated {
namespace {

// The emulated device reports a few SMs, so that "auto" picks the wide tiles
// for the larger test shapes and both variants run in the tests; an SM holds
// as many cooperative blocks as their shared memory allows, up to four (each
// block is an OS thread).
constexpr int kEmulatedMultiprocessors = 4;
constexpr int kMaxBlocksPerMultiprocessor = 4;
constexpr size_t kEmulatedSharedBytes = 227 * 1024;  // an H100's opt-in maximum

struct SimLaunch {
  template <typename Tag, typename... Args>
  void operator()(const LaunchConfig& c, Tag tag, const Args&... args) const {
    const dim3 grid(c.grid_x, c.grid_y), block(c.threads);
    if (c.cooperative) {
      sim::launch_cooperative(grid, block, c.shared_bytes, kernel_entry(tag), args...);
    } else {
      sim::launch(grid, block, c.shared_bytes, kernel_entry(tag), args...);
    }
  }
};

class EmulatedStepKernels final : public DispatchedStepKernels<EmulatedStepKernels> {
 public:
  EmulatedStepKernels(Order order, uint64_t seed) {
    sim::Options options = sim::options();
    options.order = order == Order::kReverse  ? sim::Order::Reverse
                    : order == Order::kRandom ? sim::Order::Random
                                              : sim::Order::Forward;
    options.seed = seed;
    sim::set_options(options);
  }

  int multiprocessors() const override { return kEmulatedMultiprocessors; }
  int persistent_capacity(StorageType, PersistentKernel, size_t shared_bytes) const override {
    const size_t per_sm = kEmulatedSharedBytes / std::max<size_t>(shared_bytes, 1);
    return kEmulatedMultiprocessors *
           static_cast<int>(std::min<size_t>(per_sm, kMaxBlocksPerMultiprocessor));
  }

 private:
  friend class DispatchedStepKernels<EmulatedStepKernels>;
  SimLaunch launcher(StorageType) const { return {}; }
};

}  // namespace

std::unique_ptr<StepKernels> make_step_kernels(Order order, uint64_t seed) {
  return std::make_unique<EmulatedStepKernels>(order, seed);
}

}  // namespace fastlstm::emulated
