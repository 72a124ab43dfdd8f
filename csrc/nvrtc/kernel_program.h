// The NVRTC program of the CUDA kernels: for one storage type, every kernel
// instance the dispatch can launch (kernel_dispatch.h), compiled to a cubin
// for one GPU architecture with the nvcc build's numerics; kept in a disk
// cache keyed by the sources, the options, NVRTC's version and the arch.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "../kernels/step_kernels.h"

namespace fastlstm::nvrtc {

struct CompiledKernels {
  std::string cubin;  // or, compiled for a virtual arch, the PTX
  // (name expression, lowered name) of every instance.
  std::vector<std::pair<std::string, std::string>> lowered;
  std::string log;  // NVRTC's, with ptxas's report per kernel
};

// The name expressions of every instance of the storage type.
std::vector<std::string> kernel_instance_names(StorageType type);

// The options of a compile for sm_<arch>.
std::vector<std::string> compile_options(int arch);

// Compiled now (nvrtc-check), or from the cache where it holds this compile
// (the executor; a fresh compile is stored there; *hit says which).
CompiledKernels compile_kernels(StorageType type, int arch);
// The PTX for compute_<arch> instead of a cubin (nvrtc-check's instruction checks).
CompiledKernels compile_ptx(StorageType type, int arch);
CompiledKernels cached_kernels(StorageType type, int arch, bool* hit = nullptr);

}  // namespace fastlstm::nvrtc
