// The ops behind `python -m fastlstm nvrtc-check`, which needs no GPU:
// _nvrtc_compile compiles one storage type's kernels and returns the cubin,
// NVRTC's log (ptxas's per-kernel report), each instance's name expression
// with its lowered name, and the options; _nvrtc_cache fills the disk cache
// as the executor would at its first use (true where it held them already).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <tuple>
#include <vector>

namespace fastlstm::nvrtc {

// dtype: float32, float64, float16 or bfloat16.
std::tuple<at::Tensor, std::string, std::vector<std::string>, std::vector<std::string>,
           std::vector<std::string>>
nvrtc_compile_op(const std::string& dtype, int64_t arch);

bool nvrtc_cache_op(const std::string& dtype, int64_t arch);

// _nvrtc_ptx: the PTX for compute_<arch>, with each instance's lowered name.
std::tuple<std::string, std::vector<std::string>, std::vector<std::string>> nvrtc_ptx_op(
    const std::string& dtype, int64_t arch);

}  // namespace fastlstm::nvrtc
