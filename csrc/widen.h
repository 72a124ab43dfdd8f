// Half and bfloat16 layers run in float32 on every backend (part 2 of the
// CUDA work adds native Tensor Core kernels): arguments are widened once on
// entry, results rounded once on exit; the workspace stays float32.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <tuple>

#include "lstm_args.h"

namespace fastlstm {

using LayerOutputs = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;
using LayerGrads =
    std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

inline bool is_widened(const at::Tensor& t) {
  return compute_dtype(t.scalar_type()) != t.scalar_type();
}

inline at::Tensor widened(const at::Tensor& t) { return t.to(compute_dtype(t.scalar_type())); }

inline std::optional<at::Tensor> widened(const std::optional<at::Tensor>& t) {
  return t ? std::optional(widened(*t)) : std::nullopt;
}

// layer(...) on widened arguments; output, h_n and c_n back in input's dtype.
template <typename Layer>
LayerOutputs layer_in_float(Layer&& layer, const at::Tensor& input, const at::Tensor& h0,
                            const at::Tensor& c0, const at::Tensor& w_ih, const at::Tensor& w_hh,
                            const std::optional<at::Tensor>& bias,
                            const std::optional<at::Tensor>& w_hr,
                            const std::optional<at::Tensor>& batch_sizes, bool reverse,
                            bool save_workspace) {
  auto [out, h_n, c_n, gates, cells] =
      layer(widened(input), widened(h0), widened(c0), widened(w_ih), widened(w_hh),
            widened(bias), widened(w_hr), batch_sizes, reverse, save_workspace);
  const auto dt = input.scalar_type();
  return {out.to(dt), h_n.to(dt), c_n.to(dt), gates, cells};
}

// backward(...) on widened arguments (the workspace is float32 already);
// every gradient back in input's dtype.
template <typename Backward>
LayerGrads layer_backward_in_float(
    Backward&& backward, const at::Tensor& grad_output, const at::Tensor& grad_h_n,
    const at::Tensor& grad_c_n, const at::Tensor& input, const at::Tensor& h0,
    const at::Tensor& c0, const at::Tensor& w_ih, const at::Tensor& w_hh,
    const std::optional<at::Tensor>& w_hr, const std::optional<at::Tensor>& batch_sizes,
    bool reverse, const at::Tensor& output, const at::Tensor& gates, const at::Tensor& cells) {
  auto grads = backward(widened(grad_output), widened(grad_h_n), widened(grad_c_n),
                        widened(input), widened(h0), widened(c0), widened(w_ih), widened(w_hh),
                        widened(w_hr), batch_sizes, reverse, widened(output), gates, cells);
  const auto dt = input.scalar_type();
  return std::apply([&](auto&... g) { return std::make_tuple(g.to(dt)...); }, grads);
}

}  // namespace fastlstm
