// The fastlstm_emulated library: the layer ops of fastlstm (same schemas)
// run through the CUDA kernels compiled for the CPU SIMT emulator, behind
// the same glue as on a GPU. Test infrastructure, built apart from the
// product (fastlstm/_emulated.py builds and loads it); while
// fastlstm.backend("emulated") is on, these kernels stand in for fastlstm's
// CPU ones. _configure sets the kernel variant and the scheduling order
// that the calls after it use.
#include <torch/library.h>

#include <mutex>

#include "../kernel_glue/lstm_kernel_glue.h"
#include "../op_kernels.h"
#include "../op_schemas.h"
#include "emulated_step_kernels.h"

namespace fastlstm::emulated {
namespace {

struct Scheduling {
  Order order = Order::kForward;
  uint64_t seed = 0;
};

std::mutex scheduling_mutex;
Scheduling scheduling;

Order parse_order(const std::string& name) {
  if (name == "forward") return Order::kForward;
  if (name == "reverse") return Order::kReverse;
  TORCH_CHECK_VALUE(name == "random", "fastlstm: expected order to be one of forward, reverse, "
                                      "random, got '", name, "'");
  return Order::kRandom;
}

void configure(const std::string& kernel, const std::string& order, int64_t seed) {
  const Order parsed = parse_order(order);
  request_kernel(kernel);
  std::lock_guard<std::mutex> lock(scheduling_mutex);
  scheduling = {parsed, static_cast<uint64_t>(seed)};
}

std::unique_ptr<StepKernels> configured_kernels() {
  std::lock_guard<std::mutex> lock(scheduling_mutex);
  return make_step_kernels(scheduling.order, scheduling.seed);
}

LayerOutputs emulated_layer(const LayerArgs& args) {
  return lstm_layer_with_kernels(*configured_kernels(), args);
}

LayerGrads emulated_layer_backward(const BackwardArgs& args) {
  return lstm_layer_backward_with_kernels(*configured_kernels(), args);
}

}  // namespace
}  // namespace fastlstm::emulated

TORCH_LIBRARY(fastlstm_emulated, m) {
  m.def(fastlstm::kLayerSchema);
  m.def(fastlstm::kLayerBackwardSchema);
  m.def("_configure(str kernel, str order, int seed) -> ()", &fastlstm::emulated::configure);
  m.def("_last_kernel() -> str", &fastlstm::last_kernel);
}

TORCH_LIBRARY_IMPL(fastlstm_emulated, CPU, m) {
  using namespace fastlstm;
  m.impl("lstm_layer", &layer_kernel<&emulated::emulated_layer>);
  m.impl("lstm_layer_backward", &backward_kernel<&emulated::emulated_layer_backward>);
}
