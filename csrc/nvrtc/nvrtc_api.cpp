#include "nvrtc_api.h"

#include <c10/util/Exception.h>

#include <memory>
#include <mutex>

#include "dynamic_library.h"

namespace fastlstm::nvrtc {
namespace {

std::mutex config_mutex;
NvrtcConfig config{{}, {}, "", "", "fastlstm._nvrtc was not imported"};

std::vector<std::unique_ptr<DynamicLibrary>> open_all(const std::vector<std::string>& paths) {
  std::vector<std::unique_ptr<DynamicLibrary>> opened;
  for (const std::string& path : paths) {
    opened.push_back(std::make_unique<DynamicLibrary>(path, "NVRTC's builtins"));
  }
  return opened;
}

struct LoadedNvrtc {
  std::vector<std::unique_ptr<DynamicLibrary>> preloaded;
  DynamicLibrary library;
  NvrtcApi api;
  LoadedNvrtc(const std::vector<std::string>& before, const std::string& path)
      : preloaded(open_all(before)), library(path, "NVRTC") {
    library.bind(api.GetErrorString, "nvrtcGetErrorString");
    library.bind(api.Version, "nvrtcVersion");
    library.bind(api.CreateProgram, "nvrtcCreateProgram");
    library.bind(api.DestroyProgram, "nvrtcDestroyProgram");
    library.bind(api.AddNameExpression, "nvrtcAddNameExpression");
    library.bind(api.CompileProgram, "nvrtcCompileProgram");
    library.bind(api.GetProgramLogSize, "nvrtcGetProgramLogSize");
    library.bind(api.GetProgramLog, "nvrtcGetProgramLog");
    library.bind(api.GetCUBINSize, "nvrtcGetCUBINSize");
    library.bind(api.GetCUBIN, "nvrtcGetCUBIN");
    library.bind(api.GetPTXSize, "nvrtcGetPTXSize");
    library.bind(api.GetPTX, "nvrtcGetPTX");
    library.bind(api.GetLoweredName, "nvrtcGetLoweredName");
  }
};

}  // namespace

void configure_nvrtc(const std::vector<std::string>& libraries, const std::vector<std::string>& include_dirs,
                     const std::string& source_dir, const std::string& cache_dir,
                     const std::string& missing) {
  std::lock_guard<std::mutex> lock(config_mutex);
  config = {libraries, include_dirs, source_dir, cache_dir, missing};
}

NvrtcConfig nvrtc_config() {
  std::lock_guard<std::mutex> lock(config_mutex);
  return config;
}

const NvrtcApi& nvrtc_api() {
  static const std::unique_ptr<LoadedNvrtc> loaded = [] {
    const NvrtcConfig c = nvrtc_config();
    TORCH_CHECK(c.missing.empty(), "fastlstm: the CUDA kernels need either the extension built "
                "with nvcc or NVRTC at run time, and NVRTC cannot run here: ", c.missing);
    TORCH_CHECK(!c.libraries.empty(), "fastlstm: NVRTC was configured without a library");
    return std::make_unique<LoadedNvrtc>(
        std::vector<std::string>(c.libraries.begin(), c.libraries.end() - 1), c.libraries.back());
  }();
  return loaded->api;
}

}  // namespace fastlstm::nvrtc
