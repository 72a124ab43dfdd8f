// The torch glue of the CUDA kernels (csrc/kernel_glue) driven by an executor
// whose launches do nothing: what a layer call costs the host besides the
// kernels themselves, measurable on a machine without a GPU
// (bench/glue_host_cost.py builds and runs it, on CPU tensors).
#include <torch/library.h>

#include <chrono>

#include "kernel_glue/lstm_kernel_glue.h"

namespace fastlstm {
namespace {

class NoLaunches final : public StepKernels {
 public:
  int multiprocessors() const override { return 132; }
  int persistent_capacity(StorageType, PersistentKernel, size_t shared) const override {
    return shared <= 227 * 1024 ? 132 : 0;
  }

 protected:
  void launch_forward_step(StorageType, const void*, StepVariant, bool) const override {}
  void launch_backward_step(StorageType, const void*, StepVariant) const override {}
  void launch_forward_persistent(StorageType, const void*, bool) const override {}
  void launch_backward_persistent(StorageType, const void*) const override {}
  void launch_gate_activations(StorageType, const void*, void*, void*, int64_t) const override {}
};

// Microseconds per call of the glue's forward (and, with backward, of the
// forward and backward), averaged over `calls`.
double glue_us(const at::Tensor& input, const at::Tensor& h0, const at::Tensor& c0,
               const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& bias,
               bool backward, int64_t calls) {
  const NoLaunches kernels;
  LayerArgs args = checked(LayerArgs{input, h0, c0, w_ih, w_hh, bias, std::nullopt,
                                     std::nullopt, false, true, KernelChoice::kAuto});
  const auto run = [&] {
    auto [out, h_n, c_n, gates, cells] = lstm_layer_with_kernels(kernels, args);
    if (backward) {
      lstm_layer_backward_with_kernels(
          kernels, checked(BackwardArgs{args, out, h_n, c_n, out, gates, cells}));
    }
  };
  run();
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < calls; ++i) run();
  const std::chrono::duration<double, std::micro> spent = std::chrono::steady_clock::now() - start;
  return spent.count() / calls;
}

}  // namespace
}  // namespace fastlstm

TORCH_LIBRARY(fastlstm_glue_probe, m) {
  m.def("glue_us(Tensor input, Tensor h0, Tensor c0, Tensor w_ih, Tensor w_hh, Tensor bias, "
        "bool backward, int calls) -> float",
        &fastlstm::glue_us);
}
