// A shared library opened at run time (dlopen), and its symbols as typed
// function pointers: how the NVRTC executor reaches libnvrtc and the CUDA
// driver without linking either, so that one build serves machines with and
// without them.
#pragma once

#include <string>

namespace fastlstm::nvrtc {

class DynamicLibrary {
 public:
  // Throws, naming the library and why, where it cannot be opened.
  DynamicLibrary(const std::string& path, const char* what);
  DynamicLibrary(const DynamicLibrary&) = delete;
  DynamicLibrary& operator=(const DynamicLibrary&) = delete;

  template <typename Fn>
  void bind(Fn*& fn, const char* name) const {
    fn = reinterpret_cast<Fn*>(symbol(name));
  }

 private:
  void* symbol(const char* name) const;  // throws where it is missing

  std::string path_;
  void* handle_;
};

}  // namespace fastlstm::nvrtc
