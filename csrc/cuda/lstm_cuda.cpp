// CUDA backend of the fastlstm ops: device guard, current stream and the
// step kernels of csrc/kernels through the shared glue (kernel_glue/), which
// also checks the arguments exactly as the CPU backend does.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../kernel_glue/lstm_kernel_glue.h"
#include "step_launch.h"

namespace fastlstm::gpu {
namespace {

using at::Tensor;

void check_launch(cudaError_t err, const char* what) {
  TORCH_CHECK(err == cudaSuccess, "fastlstm: ", what, " failed: ",
              cudaGetErrorString(err));
}

class CudaStepKernels final : public StepKernels {
 public:
  explicit CudaStepKernels(const Tensor& on)
      : stream_(c10::cuda::getCurrentCUDAStream(on.device().index())) {
    check_launch(cudaDeviceGetAttribute(&multiprocessors_, cudaDevAttrMultiProcessorCount,
                                        on.device().index()),
                 "the device query");
  }

  int multiprocessors() const override { return multiprocessors_; }
  int persistent_capacity(StorageType type, PersistentKernel kernel,
                          size_t shared) const override {
    return visit_storage(type, [&](auto tag) {
      return gpu::persistent_capacity<decltype(tag)>(kernel, shared);
    });
  }

 protected:
  void launch_forward_step(StorageType type, const void* p, StepVariant v,
                           bool save) const override {
    visit_storage(type, [&](auto tag) {
      check_launch(run_forward_step(params<ForwardStepParams<decltype(tag)>>(p), v, save, stream_),
                   "the forward step kernel");
    });
  }
  void launch_backward_step(StorageType type, const void* p, StepVariant v) const override {
    visit_storage(type, [&](auto tag) {
      check_launch(run_backward_step(params<BackwardStepParams<decltype(tag)>>(p), v, stream_),
                   "the backward step kernel");
    });
  }
  void launch_forward_persistent(StorageType type, const void* p, bool save) const override {
    visit_storage(type, [&](auto tag) {
      check_launch(
          run_forward_persistent(params<PersistentForwardParams<decltype(tag)>>(p), save, stream_),
          "the persistent forward kernel");
    });
  }
  void launch_backward_persistent(StorageType type, const void* p) const override {
    visit_storage(type, [&](auto tag) {
      check_launch(
          run_backward_persistent(params<PersistentBackwardParams<decltype(tag)>>(p), stream_),
          "the persistent backward kernel");
    });
  }

 private:
  template <typename Params>
  static const Params& params(const void* p) {
    return *static_cast<const Params*>(p);
  }

  cudaStream_t stream_;
  int multiprocessors_ = 1;
};

LayerOutputs lstm_layer_cuda(const Tensor& input, const Tensor& h0, const Tensor& c0,
                             const Tensor& w_ih, const Tensor& w_hh,
                             const std::optional<Tensor>& bias, const std::optional<Tensor>& w_hr,
                             const std::optional<Tensor>& batch_sizes, bool reverse,
                             bool save_workspace) {
  const c10::cuda::CUDAGuard guard(input.device());
  return lstm_layer_with_kernels(CudaStepKernels(input), input, h0, c0, w_ih, w_hh, bias, w_hr,
                                 batch_sizes, reverse, save_workspace);
}

LayerGrads lstm_layer_backward_cuda(const Tensor& grad_output, const Tensor& grad_h_n,
                                    const Tensor& grad_c_n, const Tensor& input, const Tensor& h0,
                                    const Tensor& c0, const Tensor& w_ih, const Tensor& w_hh,
                                    const std::optional<Tensor>& w_hr,
                                    const std::optional<Tensor>& batch_sizes, bool reverse,
                                    const Tensor& output, const Tensor& gates,
                                    const Tensor& cells) {
  const c10::cuda::CUDAGuard guard(input.device());
  return lstm_layer_backward_with_kernels(CudaStepKernels(input), grad_output, grad_h_n,
                                          grad_c_n, input, h0, c0, w_ih, w_hh, w_hr, batch_sizes,
                                          reverse, output, gates, cells);
}

std::tuple<Tensor, Tensor> gate_activations_cuda(const Tensor& x_) {
  const c10::cuda::CUDAGuard guard(x_.device());
  const Tensor x = x_.contiguous();
  Tensor sig = at::empty_like(x), tanh = at::empty_like(x);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x.device().index());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fastlstm::_gate_activations (CUDA)", [&] {
    check_launch(run_gate_activations(x.data_ptr<scalar_t>(), sig.data_ptr<scalar_t>(),
                                      tanh.data_ptr<scalar_t>(), x.numel(), stream),
                 "the gate activations kernel");
  });
  return {sig, tanh};
}

}  // namespace

TORCH_LIBRARY_IMPL(fastlstm, CUDA, m) {
  m.impl("lstm_layer", &lstm_layer_cuda);
  m.impl("lstm_layer_backward", &lstm_layer_backward_cuda);
  m.impl("_gate_activations", &gate_activations_cuda);
}

}  // namespace fastlstm::gpu
