#include "kernel_choice.h"

#include <c10/util/Exception.h>

#include <atomic>

namespace fastlstm {
namespace {

std::atomic<int> requested{static_cast<int>(KernelChoice::kAuto)};
std::atomic<int> last_ran{-1};

}  // namespace

const std::vector<std::string>& kernel_choice_names() {
  static const std::vector<std::string> names = {
      "auto", "step", "step_narrow", "step_wide", "tensor_core", "persistent",
      "persistent_tensor_core", "persistent_2d"};
  return names;
}

const char* kernel_choice_name(KernelChoice choice) {
  return kernel_choice_names().at(static_cast<size_t>(choice)).c_str();
}

KernelChoice parse_kernel_choice(const std::string& name) {
  const auto& names = kernel_choice_names();
  std::string listed;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<KernelChoice>(i);
    listed += (i ? ", " : "") + names[i];
  }
  TORCH_CHECK_VALUE(false, "fastlstm: expected kernel to be one of ", listed, ", got '", name,
                    "'");
}

KernelChoice requested_kernel() { return static_cast<KernelChoice>(requested.load()); }

void request_kernel(const std::string& name) {
  requested.store(static_cast<int>(parse_kernel_choice(name)));
}

std::string requested_kernel_name() { return kernel_choice_name(requested_kernel()); }

void record_kernel(KernelChoice ran) { last_ran.store(static_cast<int>(ran)); }

std::string last_kernel() {
  const int ran = last_ran.load();
  return ran < 0 ? "" : kernel_choice_name(static_cast<KernelChoice>(ran));
}

}  // namespace fastlstm
