#include "dynamic_library.h"

#include <c10/util/Exception.h>
#include <dlfcn.h>

namespace fastlstm::nvrtc {

DynamicLibrary::DynamicLibrary(const std::string& path, const char* what)
    : path_(path), handle_(dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
  if (handle_ == nullptr) {
    const char* why = dlerror();
    TORCH_CHECK(false, "fastlstm: cannot load ", what, " (", path, "): ", why ? why : "unknown");
  }
}

void* DynamicLibrary::symbol(const char* name) const {
  void* sym = dlsym(handle_, name);
  TORCH_CHECK(sym != nullptr, "fastlstm: ", path_, " has no symbol ", name);
  return sym;
}

}  // namespace fastlstm::nvrtc
