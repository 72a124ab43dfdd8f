#include "emulated_step_kernels.h"

#include "../kernels/lstm_step_dispatch.cuh"

namespace fastlstm::emulated {
namespace {

// The emulated device reports a few SMs, so that "auto" picks the wide tiles
// for the larger test shapes and both variants run in the tests; a
// cooperative grid gets one block per SM (each block is an OS thread).
constexpr int kEmulatedMultiprocessors = 4;
constexpr size_t kEmulatedSharedBytes = 227 * 1024;  // an H100's opt-in maximum

struct SimLaunch {
  template <typename Kernel, typename Params>
  void operator()(dim3 grid, dim3 block, Kernel kernel, const Params& p) const {
    sim::launch(grid, block, 0, kernel, p);
  }
};

struct SimCooperativeLaunch {
  template <typename Kernel, typename Params>
  void operator()(dim3 grid, dim3 block, size_t shared, Kernel kernel, const Params& p) const {
    sim::launch_cooperative(grid, block, shared, kernel, p);
  }
};

template <typename Params>
const Params& params(const void* p) {
  return *static_cast<const Params*>(p);
}

class EmulatedStepKernels final : public StepKernels {
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
    return shared_bytes <= kEmulatedSharedBytes ? kEmulatedMultiprocessors : 0;
  }

 protected:
  void launch_forward_step(StorageType type, const void* p, StepVariant v,
                           bool save) const override {
    visit_storage(type, [&](auto tag) {
      const auto& fp = params<ForwardStepParams<decltype(tag)>>(p);
      if (fp.rows > 0 && fp.hidden > 0) dispatch_forward_step(fp, v, save, SimLaunch{});
    });
  }
  void launch_backward_step(StorageType type, const void* p, StepVariant v) const override {
    visit_storage(type, [&](auto tag) {
      const auto& bp = params<BackwardStepParams<decltype(tag)>>(p);
      if (bp.rows > 0 && bp.proj > 0) dispatch_backward_step(bp, v, SimLaunch{});
    });
  }
  void launch_forward_persistent(StorageType type, const void* p, bool save) const override {
    visit_storage(type, [&](auto tag) {
      const auto& fp = params<PersistentForwardParams<decltype(tag)>>(p);
      if (fp.k_begin < fp.k_end && fp.hidden > 0) {
        dispatch_persistent_forward(fp, save, SimCooperativeLaunch{});
      }
    });
  }
  void launch_backward_persistent(StorageType type, const void* p) const override {
    visit_storage(type, [&](auto tag) {
      const auto& bp = params<PersistentBackwardParams<decltype(tag)>>(p);
      if (bp.sched.steps > 0 && bp.hidden > 0) {
        dispatch_persistent_backward(bp, SimCooperativeLaunch{});
      }
    });
  }
};

}  // namespace

std::unique_ptr<StepKernels> make_step_kernels(Order order, uint64_t seed) {
  return std::make_unique<EmulatedStepKernels>(order, seed);
}

}  // namespace fastlstm::emulated
