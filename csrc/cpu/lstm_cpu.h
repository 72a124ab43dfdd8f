// What the CPU backend's forward (lstm_cpu.cpp) and backward
// (lstm_cpu_backward.cpp) share: tensors as the engine's matrices, the
// engine's thread count, and a layer's weights.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <optional>

#include "engine.h"

namespace fastlstm::cpu {

// One thread inside a parallel region: a team there would oversubscribe.
inline int engine_threads() { return at::in_parallel_region() ? 1 : at::get_num_threads(); }

template <typename T>
Matrix<T> rows_of(const at::Tensor& t) {
  return {t.data_ptr<T>(), t.size(1)};
}

inline at::Tensor packed(size_t size, const at::TensorOptions& opts) {
  return at::empty({static_cast<int64_t>(size)}, opts);
}

inline std::optional<at::Tensor> contiguous(const std::optional<at::Tensor>& t) {
  return t ? std::optional(t->contiguous()) : std::nullopt;
}

struct LayerWeights {
  at::Tensor w_ih, w_hh, bias;  // bias: zeros without one
  std::optional<at::Tensor> w_hr;
};

}  // namespace fastlstm::cpu
