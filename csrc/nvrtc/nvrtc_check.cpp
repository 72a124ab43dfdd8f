#include "nvrtc_check.h"

#include <ATen/ops/empty.h>

#include <cstring>

#include "kernel_program.h"

namespace fastlstm::nvrtc {
namespace {

StorageType storage_named(const std::string& dtype) {
  if (dtype == "float32") return StorageType::kFloat;
  if (dtype == "float64") return StorageType::kDouble;
  if (dtype == "float16") return StorageType::kHalf;
  TORCH_CHECK_VALUE(dtype == "bfloat16", "fastlstm: expected dtype to be one of float32, "
                                         "float64, float16, bfloat16, got '", dtype, "'");
  return StorageType::kBFloat16;
}

int checked_arch(int64_t arch) {
  TORCH_CHECK_VALUE(arch >= 50 && arch < 1000, "fastlstm: expected an arch such as 80 or 90, got ",
                    arch);
  return static_cast<int>(arch);
}

}  // namespace

std::tuple<at::Tensor, std::string, std::vector<std::string>, std::vector<std::string>,
           std::vector<std::string>>
nvrtc_compile_op(const std::string& dtype, int64_t arch) {
  const CompiledKernels k = compile_kernels(storage_named(dtype), checked_arch(arch));
  at::Tensor cubin = at::empty({static_cast<int64_t>(k.cubin.size())}, at::kByte);
  std::memcpy(cubin.data_ptr(), k.cubin.data(), k.cubin.size());
  std::vector<std::string> names, lowered;
  for (const auto& [name, low] : k.lowered) {
    names.push_back(name);
    lowered.push_back(low);
  }
  return {cubin, k.log, names, lowered, compile_options(checked_arch(arch))};
}

std::tuple<std::string, std::vector<std::string>, std::vector<std::string>> nvrtc_ptx_op(
    const std::string& dtype, int64_t arch) {
  const CompiledKernels k = compile_ptx(storage_named(dtype), checked_arch(arch));
  std::vector<std::string> names, lowered;
  for (const auto& [name, low] : k.lowered) {
    names.push_back(name);
    lowered.push_back(low);
  }
  return {k.cubin, names, lowered};
}

bool nvrtc_cache_op(const std::string& dtype, int64_t arch) {
  bool hit = false;
  cached_kernels(storage_named(dtype), checked_arch(arch), &hit);
  return hit;
}

}  // namespace fastlstm::nvrtc
