#include "backend_switch.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <array>
#include <mutex>

namespace fastlstm {
namespace {

std::mutex choice_mutex;
BackendChoice choice;
std::string recorded_kernel;

template <size_t N>
void check_one_of(const std::string& what, const std::string& value,
                  const std::array<const char*, N>& allowed) {
  const bool ok = std::any_of(allowed.begin(), allowed.end(),
                              [&](const char* a) { return value == a; });
  std::string names;
  for (const char* a : allowed) names += std::string(names.empty() ? "" : ", ") + a;
  TORCH_CHECK(ok, "fastlstm.backend: expected ", what, " to be one of ", names, ", got '", value,
              "'");
}

}  // namespace

BackendChoice current_backend() {
  std::lock_guard<std::mutex> lock(choice_mutex);
  return choice;
}

void set_backend(const std::string& name, const std::string& kernel, const std::string& order,
                 int64_t seed) {
  check_one_of("backend", name, std::array{"native", "emulated"});
  check_one_of("kernel", kernel,
               std::array{"auto", "step", "step_narrow", "step_wide", "tensor_core", "persistent",
                          "persistent_tensor_core"});
  check_one_of("order", order, std::array{"forward", "reverse", "random"});
  std::lock_guard<std::mutex> lock(choice_mutex);
  choice = BackendChoice{name == "emulated", kernel, order, seed};
}

std::tuple<std::string, std::string, std::string, int64_t> get_backend() {
  const BackendChoice c = current_backend();
  return {c.emulated ? "emulated" : "native", c.kernel, c.order, c.seed};
}

void record_kernel(const char* name) {
  std::lock_guard<std::mutex> lock(choice_mutex);
  recorded_kernel = name;
}

std::string last_kernel() {
  std::lock_guard<std::mutex> lock(choice_mutex);
  return recorded_kernel;
}

}  // namespace fastlstm
