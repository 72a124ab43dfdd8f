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
  void forward(const ForwardStepParams<float>& p, StepVariant v, bool save) const override {
    run_forward(p, v, save);
  }
  void forward(const ForwardStepParams<double>& p, StepVariant v, bool save) const override {
    run_forward(p, v, save);
  }
  void backward(const BackwardStepParams<float>& p, StepVariant v) const override {
    run_backward(p, v);
  }
  void backward(const BackwardStepParams<double>& p, StepVariant v) const override {
    run_backward(p, v);
  }
  int multiprocessors() const override { return kEmulatedMultiprocessors; }
  void forward_persistent(const PersistentForwardParams<float>& p, bool save) const override {
    run_forward_persistent(p, save);
  }
  void forward_persistent(const PersistentForwardParams<double>& p, bool save) const override {
    run_forward_persistent(p, save);
  }
  void backward_persistent(const PersistentBackwardParams<float>& p) const override {
    run_backward_persistent(p);
  }
  void backward_persistent(const PersistentBackwardParams<double>& p) const override {
    run_backward_persistent(p);
  }
  int persistent_capacity(bool, bool, size_t shared_bytes) const override {
    return shared_bytes <= kEmulatedSharedBytes ? kEmulatedMultiprocessors : 0;
  }

 private:
  template <typename T>
  static void run_forward(const ForwardStepParams<T>& p, StepVariant v, bool save) {
    if (p.rows > 0 && p.hidden > 0) dispatch_forward_step(p, v, save, SimLaunch{});
  }
  template <typename T>
  static void run_backward(const BackwardStepParams<T>& p, StepVariant v) {
    if (p.rows > 0 && p.proj > 0) dispatch_backward_step(p, v, SimLaunch{});
  }
  template <typename T>
  static void run_forward_persistent(const PersistentForwardParams<T>& p, bool save) {
    if (p.k_begin < p.k_end && p.hidden > 0) dispatch_persistent_forward(p, save, SimCooperativeLaunch{});
  }
  template <typename T>
  static void run_backward_persistent(const PersistentBackwardParams<T>& p) {
    if (p.sched.steps > 0 && p.hidden > 0) dispatch_persistent_backward(p, SimCooperativeLaunch{});
  }
};

}  // namespace

std::unique_ptr<StepKernels> make_step_kernels(Order order, uint64_t seed) {
  return std::make_unique<EmulatedStepKernels>(order, seed);
}

}  // namespace fastlstm::emulated
