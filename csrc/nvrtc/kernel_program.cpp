#include "kernel_program.h"

#include <c10/util/Exception.h>

#include <memory>
#include <optional>
#include <set>

#include "../kernels/kernel_dispatch.h"
#include "cubin_cache.h"
#include "nvrtc_api.h"

namespace fastlstm::nvrtc {
namespace {

constexpr const char* kProgramSource = "#include \"kernels/all_kernels.cuh\"\n";

const char* storage_name(StorageType type) {
  return visit_storage(type, [](auto tag) { return type_spelling<decltype(tag)>(); });
}

// The numerics of the nvcc build: nvcc's defaults spelled out (CuPy, for one,
// turns flush-to-zero on), and the defines torch's CUDAExtension adds, which
// keep CUDA's implicit half and bfloat16 conversions out of the kernels.
std::vector<std::string> compile_options(int arch, const NvrtcConfig& config, bool ptx = false) {
  std::vector<std::string> options = {
      std::string("--gpu-architecture=") + (ptx ? "compute_" : "sm_") + std::to_string(arch),
      "-std=c++17", "-default-device", "-ftz=false", "-prec-div=true", "-prec-sqrt=true",
      "-fmad=true", ptx ? "-lineinfo" : "--ptxas-options=-v",
      "-D__CUDA_NO_HALF_OPERATORS__", "-D__CUDA_NO_HALF_CONVERSIONS__",
      "-D__CUDA_NO_BFLOAT16_CONVERSIONS__", "-D__CUDA_NO_HALF2_OPERATORS__",
      "-I" + config.source_dir};
  for (const std::string& dir : config.include_dirs) options.push_back("-I" + dir);
  return options;
}

void check(const NvrtcApi& api, nvrtcResult result, const char* what) {
  TORCH_CHECK(result == 0, "fastlstm: NVRTC ", what, " failed: ", api.GetErrorString(result));
}

std::string program_log(const NvrtcApi& api, nvrtcProgram program) {
  size_t size = 0;
  check(api, api.GetProgramLogSize(program, &size), "log size");
  std::string log(size, '\0');
  check(api, api.GetProgramLog(program, log.data()), "log");
  while (!log.empty() && log.back() == '\0') log.pop_back();
  return log;
}

CompiledKernels compile(const NvrtcApi& api, StorageType type,
                        const std::vector<std::string>& options, bool ptx = false) {
  nvrtcProgram program = nullptr;
  check(api, api.CreateProgram(&program, kProgramSource, "fastlstm_kernels.cu", 0, nullptr,
                               nullptr),
        "program creation");
  const std::unique_ptr<_nvrtcProgram, void (*)(nvrtcProgram)> owned(
      program, [](nvrtcProgram p) { nvrtc_api().DestroyProgram(&p); });
  const std::vector<std::string> names = kernel_instance_names(type);
  for (const std::string& name : names) {
    check(api, api.AddNameExpression(program, ("&" + name).c_str()), "name expression");
  }
  std::vector<const char*> argv;
  for (const std::string& o : options) argv.push_back(o.c_str());
  const nvrtcResult result = api.CompileProgram(program, (int)argv.size(), argv.data());
  CompiledKernels out;
  out.log = program_log(api, program);
  TORCH_CHECK(result == 0, "fastlstm: NVRTC could not compile the ", storage_name(type),
              " kernels (", api.GetErrorString(result), "):\n", out.log);
  size_t size = 0;
  check(api, (ptx ? api.GetPTXSize : api.GetCUBINSize)(program, &size), "output size");
  out.cubin.resize(size);
  check(api, (ptx ? api.GetPTX : api.GetCUBIN)(program, out.cubin.data()), "output");
  for (const std::string& name : names) {
    const char* lowered = nullptr;
    check(api, api.GetLoweredName(program, ("&" + name).c_str(), &lowered), "lowered name");
    out.lowered.emplace_back(name, lowered);
  }
  return out;
}

// What a cached cubin must match: the sources, the options, NVRTC's version
// and the arch (in the options).
std::string cache_key(StorageType type, const std::vector<std::string>& options,
                      const NvrtcConfig& config) {
  int major = 0, minor = 0;
  const NvrtcApi& api = nvrtc_api();
  check(api, api.Version(&major, &minor), "version");
  std::string key = std::string("fastlstm nvrtc 1; ") + storage_name(type) + "; nvrtc " +
                    std::to_string(major) + "." + std::to_string(minor) + "; sources " +
                    sources_digest(config.source_dir) + ";";
  for (const std::string& o : options) key += " " + o;
  return key;
}

}  // namespace

std::vector<std::string> kernel_instance_names(StorageType type) {
  std::set<std::string> names;
  visit_storage(type, [&](auto tag) {
    for_each_kernel_instance<decltype(tag)>([&](auto kernel) { names.insert(name_expression(kernel)); });
  });
  return {names.begin(), names.end()};
}

std::vector<std::string> compile_options(int arch) {
  return compile_options(arch, nvrtc_config());
}

CompiledKernels compile_kernels(StorageType type, int arch) {
  return compile(nvrtc_api(), type, compile_options(arch, nvrtc_config()));
}

CompiledKernels compile_ptx(StorageType type, int arch) {
  return compile(nvrtc_api(), type, compile_options(arch, nvrtc_config(), true), true);
}

CompiledKernels cached_kernels(StorageType type, int arch, bool* hit) {
  const NvrtcConfig config = nvrtc_config();
  const NvrtcApi& api = nvrtc_api();
  const std::vector<std::string> options = compile_options(arch, config);
  const CubinCache cache(config.cache_dir);
  const std::string key = cache_key(type, options, config);
  std::optional<CompiledKernels> cached = cache.load(key);
  if (hit != nullptr) *hit = cached.has_value();
  if (cached) return *cached;
  CompiledKernels compiled = compile(api, type, options);
  cache.store(key, compiled);
  return compiled;
}

}  // namespace fastlstm::nvrtc
