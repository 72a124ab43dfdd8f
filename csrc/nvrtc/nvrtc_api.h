// The part of NVRTC's C API the executor uses, declared here (NVRTC's header
// need not be present at build time) and bound from the library that
// configure_nvrtc names (fastlstm/_nvrtc.py finds it in the
// nvidia-cuda-nvrtc wheel or the CUDA toolkit).
#pragma once

#include <stddef.h>

#include <string>
#include <vector>

namespace fastlstm::nvrtc {

using nvrtcResult = int;
using nvrtcProgram = struct _nvrtcProgram*;

struct NvrtcApi {
  const char* (*GetErrorString)(nvrtcResult);
  nvrtcResult (*Version)(int* major, int* minor);
  nvrtcResult (*CreateProgram)(nvrtcProgram*, const char* source, const char* name, int headers,
                               const char* const* header_sources,
                               const char* const* include_names);
  nvrtcResult (*DestroyProgram)(nvrtcProgram*);
  nvrtcResult (*AddNameExpression)(nvrtcProgram, const char* expression);
  nvrtcResult (*CompileProgram)(nvrtcProgram, int options, const char* const* option_values);
  nvrtcResult (*GetProgramLogSize)(nvrtcProgram, size_t*);
  nvrtcResult (*GetProgramLog)(nvrtcProgram, char*);
  nvrtcResult (*GetCUBINSize)(nvrtcProgram, size_t*);
  nvrtcResult (*GetCUBIN)(nvrtcProgram, char*);
  nvrtcResult (*GetPTXSize)(nvrtcProgram, size_t*);
  nvrtcResult (*GetPTX)(nvrtcProgram, char*);
  nvrtcResult (*GetLoweredName)(nvrtcProgram, const char* expression, const char** lowered);
};

// Where NVRTC and what it compiles live, set once by fastlstm/_nvrtc.py at
// import (body of the op _nvrtc_configure): the libraries to open, libnvrtc
// last (before it, the builtins library of the same folder, which libnvrtc
// opens by name and would not find in a wheel's folder), the include
// folders of the CUDA headers, the folder holding gate_math.h and kernels/,
// and the cubin cache folder.
struct NvrtcConfig {
  std::vector<std::string> libraries;
  std::vector<std::string> include_dirs;
  std::string source_dir;
  std::string cache_dir;
  std::string missing;  // why NVRTC cannot run here (a package to install), if it cannot
};

void configure_nvrtc(const std::vector<std::string>& libraries, const std::vector<std::string>& include_dirs,
                     const std::string& source_dir, const std::string& cache_dir,
                     const std::string& missing);
NvrtcConfig nvrtc_config();

// The bound API, loaded at first use; an error naming what is missing where
// NVRTC was not found.
const NvrtcApi& nvrtc_api();

}  // namespace fastlstm::nvrtc
