#include "nvcc_step_kernels.h"

#include <c10/util/Exception.h>

#include "step_launch.h"

namespace fastlstm::gpu {
namespace {

void check_launch(cudaError_t err, const char* what) {
  TORCH_CHECK(err == cudaSuccess, "fastlstm: ", what, " failed: ", cudaGetErrorString(err));
}

class NvccStepKernels final : public StepKernels {
 public:
  NvccStepKernels(int device, cudaStream_t stream) : stream_(stream) {
    check_launch(cudaDeviceGetAttribute(&multiprocessors_, cudaDevAttrMultiProcessorCount, device),
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
      check_launch(run_forward_step(params_of<ForwardStepParams<decltype(tag)>>(p), v, save, stream_),
                   "the forward step kernel");
    });
  }
  void launch_backward_step(StorageType type, const void* p, StepVariant v) const override {
    visit_storage(type, [&](auto tag) {
      check_launch(run_backward_step(params_of<BackwardStepParams<decltype(tag)>>(p), v, stream_),
                   "the backward step kernel");
    });
  }
  void launch_forward_persistent(StorageType type, const void* p, bool save) const override {
    visit_storage(type, [&](auto tag) {
      check_launch(
          run_forward_persistent(params_of<PersistentForwardParams<decltype(tag)>>(p), save, stream_),
          "the persistent forward kernel");
    });
  }
  void launch_backward_persistent(StorageType type, const void* p) const override {
    visit_storage(type, [&](auto tag) {
      check_launch(
          run_backward_persistent(params_of<PersistentBackwardParams<decltype(tag)>>(p), stream_),
          "the persistent backward kernel");
    });
  }
  void launch_gate_activations(StorageType type, const void* x, void* sig, void* tanh,
                               int64_t n) const override {
    visit_storage(type, [&](auto tag) {
      using T = decltype(tag);
      check_launch(run_gate_activations(static_cast<const T*>(x), static_cast<T*>(sig),
                                        static_cast<T*>(tanh), n, stream_),
                   "the gate activations kernel");
    });
  }

 private:
  cudaStream_t stream_;
  int multiprocessors_ = 1;
};

}  // namespace

std::unique_ptr<StepKernels> nvcc_step_kernels(int device, void* stream) {
  return std::make_unique<NvccStepKernels>(device, static_cast<cudaStream_t>(stream));
}

}  // namespace fastlstm::gpu
