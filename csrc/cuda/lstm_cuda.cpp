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

  void forward(const ForwardStepParams<float>& p, StepVariant v, bool save) const override {
    check_launch(run_forward_step(p, v, save, stream_), "the forward step kernel");
  }
  void forward(const ForwardStepParams<double>& p, StepVariant v, bool save) const override {
    check_launch(run_forward_step(p, v, save, stream_), "the forward step kernel");
  }
  void backward(const BackwardStepParams<float>& p, StepVariant v) const override {
    check_launch(run_backward_step(p, v, stream_), "the backward step kernel");
  }
  void backward(const BackwardStepParams<double>& p, StepVariant v) const override {
    check_launch(run_backward_step(p, v, stream_), "the backward step kernel");
  }
  int multiprocessors() const override { return multiprocessors_; }
  void forward_persistent(const PersistentForwardParams<float>& p, bool save) const override {
    check_launch(run_forward_persistent(p, save, stream_), "the persistent forward kernel");
  }
  void forward_persistent(const PersistentForwardParams<double>& p, bool save) const override {
    check_launch(run_forward_persistent(p, save, stream_), "the persistent forward kernel");
  }
  void backward_persistent(const PersistentBackwardParams<float>& p) const override {
    check_launch(run_backward_persistent(p, stream_), "the persistent backward kernel");
  }
  void backward_persistent(const PersistentBackwardParams<double>& p) const override {
    check_launch(run_backward_persistent(p, stream_), "the persistent backward kernel");
  }
  int persistent_capacity(bool backward, bool is_double, size_t shared_bytes) const override {
    return is_double ? gpu::persistent_capacity<double>(backward, shared_bytes)
                     : gpu::persistent_capacity<float>(backward, shared_bytes);
  }

 private:
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
