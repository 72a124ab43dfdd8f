// Ops that drive the NVRTC executor (csrc/nvrtc) against the fake driver:
// the kernels are really compiled by NVRTC and loaded through the driver's
// API, and every launch is recorded (tests/test_nvrtc.py).
#include <torch/library.h>

#include <chrono>
#include <sstream>

#include "fake_driver.h"
#include "nvrtc/nvrtc_api.h"
#include "nvrtc/nvrtc_step_kernels.h"

namespace fastlstm::nvrtc {
namespace {

void* const kStream = reinterpret_cast<void*>(0xabc);

StorageType storage_named(const std::string& dtype) {
  if (dtype == "float64") return StorageType::kDouble;
  if (dtype == "float16") return StorageType::kHalf;
  if (dtype == "bfloat16") return StorageType::kBFloat16;
  return StorageType::kFloat;
}

std::vector<std::string> described(const FakeDriverLog& log) {
  std::vector<std::string> out;
  for (const FakeLaunch& l : log.launches) {
    std::ostringstream s;
    s << l.function << " grid " << l.grid_x << "x" << l.grid_y << " threads " << l.threads
      << " shared " << l.shared << (l.cooperative ? " cooperative" : "") << " stream "
      << (l.stream == reinterpret_cast<uintptr_t>(kStream) ? "torch" : "other");
    out.push_back(s.str());
  }
  return out;
}

// One launch of `kind` for a layer of this hidden size and batch.
template <typename T>
void launch_one(const StepKernels& k, const std::string& kind, int hidden, int rows, int64_t variant,
                bool save, int units) {
  const auto v = static_cast<StepVariant>(variant);
  if (kind == "forward_step") {
    ForwardStepParams<T> p{};
    p.rows = rows, p.hidden = p.proj = hidden;
    k.forward(p, v, save);
  } else if (kind == "backward_step") {
    BackwardStepParams<T> p{};
    p.rows = rows, p.hidden = p.proj = hidden;
    k.backward(p, v);
  } else if (kind == "forward_persistent") {
    PersistentForwardParams<T> p{};
    p.k_begin = 0, p.k_end = 4, p.batch = rows, p.hidden = hidden, p.units = units;
    p.tensor_cores = variant == static_cast<int64_t>(StepVariant::kTensorCore);
    k.forward_persistent(p, save);
  } else if (kind == "backward_persistent") {
    PersistentBackwardParams<T> p{};
    p.sched.steps = 4, p.batch = rows, p.hidden = hidden, p.units = units;
    p.tensor_cores = variant == static_cast<int64_t>(StepVariant::kTensorCore);
    k.backward_persistent(p);
  } else {
    TORCH_CHECK(kind == "gate_activations", "unknown kind ", kind);
    k.gate_activations<T>(nullptr, nullptr, nullptr, rows);
  }
}

std::vector<std::string> launches(const std::string& dtype, const std::string& kind,
                                  int64_t hidden, int64_t rows, int64_t variant, bool save,
                                  int64_t units) {
  const auto kernels = nvrtc_step_kernels(0, kStream);
  take_fake_driver_log();
  visit_storage(storage_named(dtype), [&](auto tag) {
    launch_one<decltype(tag)>(*kernels, kind, (int)hidden, (int)rows, variant, save, (int)units);
  });
  return described(take_fake_driver_log());
}

int64_t capacity(const std::string& dtype, int64_t kernel, int64_t shared) {
  return nvrtc_step_kernels(0, kStream)->persistent_capacity(
      storage_named(dtype), static_cast<PersistentKernel>(kernel), shared);
}

std::tuple<int64_t, int64_t, std::vector<std::string>> loaded() {
  const FakeDriverLog log = take_fake_driver_log();
  return {log.modules, log.context_sets, log.functions};
}

// Host time of one forward-step launch through the executor, the driver call
// itself excluded (the fake returns at once).
double launch_cost_ns(int64_t launches_to_time) {
  const auto kernels = nvrtc_step_kernels(0, kStream);
  ForwardStepParams<float> p{};
  p.rows = 16, p.hidden = p.proj = 256;
  record_fake_launches(false);
  kernels->forward(p, StepVariant::kNarrow, true);
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < launches_to_time; ++i) kernels->forward(p, StepVariant::kNarrow, true);
  const auto end = std::chrono::steady_clock::now();
  record_fake_launches(true);
  return std::chrono::duration<double, std::nano>(end - start).count() / launches_to_time;
}

}  // namespace
}  // namespace fastlstm::nvrtc

TORCH_LIBRARY(fastlstm_nvrtc_probe, m) {
  using namespace fastlstm::nvrtc;
  m.def("configure(str[] libraries, str[] include_dirs, str source_dir, str cache_dir, "
        "str missing) -> ()", &configure_nvrtc);
  m.def("launches(str dtype, str kind, int hidden, int rows, int variant, bool save, int units) "
        "-> str[]", &launches);
  m.def("capacity(str dtype, int kernel, int shared) -> int", &capacity);
  m.def("loaded() -> (int modules, int context_sets, str[] functions)", &loaded);
  m.def("launch_cost_ns(int launches) -> float", &launch_cost_ns);
}
