// The CUDA backend of the ops: the device guard, torch's current stream, and
// the shared glue (kernel_glue/) driving one of the executors of the CUDA
// kernels: the library nvcc compiled into the extension, where it was built
// with one, else the kernels NVRTC compiles at run time.
// FASTLSTM_CUDA_KERNELS=nvcc or =nvrtc, read once, picks where both exist.
// Compiled into every build: it names no CUDA header, so a CPU-only build
// registers it too (and a CPU-only torch never calls it).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <ATen/Dispatch.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/library.h>

#include <cstdlib>
#include <cstring>

#include "../kernel_glue/lstm_kernel_glue.h"
#include "../nvrtc/nvrtc_step_kernels.h"
#include "../op_kernels.h"
#if defined(FASTLSTM_WITH_CUDA)
#include "../cuda/nvcc_step_kernels.h"
#endif

namespace fastlstm::gpu {
namespace {

using at::Tensor;

enum class CudaExecutor { kNvcc, kNvrtc };

#if defined(FASTLSTM_WITH_CUDA)
constexpr bool kBuiltWithNvcc = true;
#else
constexpr bool kBuiltWithNvcc = false;
#endif

CudaExecutor configured_executor() {
  static const CudaExecutor executor = [] {
    const char* name = std::getenv("FASTLSTM_CUDA_KERNELS");
    if (name == nullptr || *name == '\0') {
      return kBuiltWithNvcc ? CudaExecutor::kNvcc : CudaExecutor::kNvrtc;
    }
    TORCH_CHECK(std::strcmp(name, "nvcc") == 0 || std::strcmp(name, "nvrtc") == 0,
                "fastlstm: expected FASTLSTM_CUDA_KERNELS to be nvcc or nvrtc, got '", name, "'");
    TORCH_CHECK(std::strcmp(name, "nvrtc") == 0 || kBuiltWithNvcc,
                "fastlstm: FASTLSTM_CUDA_KERNELS=nvcc, but this build of fastlstm has no "
                "nvcc-built kernels (it was installed without nvcc); unset it to use NVRTC");
    return std::strcmp(name, "nvcc") == 0 ? CudaExecutor::kNvcc : CudaExecutor::kNvrtc;
  }();
  return executor;
}

// The executor on tensor `on`'s device, launching on its current stream.
std::unique_ptr<StepKernels> step_kernels_on(const Tensor& on) {
  const c10::Device device = on.device();
  void* stream = c10::impl::getDeviceGuardImpl(device.type())->getStream(device).native_handle();
#if defined(FASTLSTM_WITH_CUDA)
  if (configured_executor() == CudaExecutor::kNvcc) return nvcc_step_kernels(device.index(), stream);
#endif
  return nvrtc::nvrtc_step_kernels(device.index(), stream);
}

LayerOutputs lstm_layer_gpu(const LayerArgs& a) {
  const c10::DeviceGuard guard(a.input.device());
  return lstm_layer_with_kernels(*step_kernels_on(a.input), a);
}

LayerGrads lstm_layer_backward_gpu(const BackwardArgs& b) {
  const c10::DeviceGuard guard(b.layer.input.device());
  return lstm_layer_backward_with_kernels(*step_kernels_on(b.layer.input), b);
}

std::tuple<Tensor, Tensor> gate_activations_gpu(const Tensor& x_) {
  const c10::DeviceGuard guard(x_.device());
  const Tensor x = x_.contiguous();
  Tensor sig = at::empty_like(x), tanh = at::empty_like(x);
  const std::unique_ptr<StepKernels> kernels = step_kernels_on(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fastlstm::_gate_activations (CUDA)", [&] {
    kernels->gate_activations(x.data_ptr<scalar_t>(), sig.data_ptr<scalar_t>(),
                              tanh.data_ptr<scalar_t>(), x.numel());
  });
  return {sig, tanh};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastlstm, CUDA, m) {
  m.impl("lstm_layer", &layer_kernel<&lstm_layer_gpu>);
  m.impl("lstm_layer_backward", &backward_kernel<&lstm_layer_backward_gpu>);
  m.impl("_gate_activations", &gate_activations_gpu);
}

}  // namespace fastlstm::gpu
