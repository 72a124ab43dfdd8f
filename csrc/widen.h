// Half and bfloat16 layers run in float32 on the backends without native
// low-precision kernels: arguments are widened once on entry, results
// rounded once on exit; the workspace stays float32.
#pragma once

#include <ATen/ATen.h>

#include "lstm_args.h"

namespace fastlstm {

inline bool is_widened(const at::Tensor& t) {
  return compute_dtype(t.scalar_type()) != t.scalar_type();
}

inline at::Tensor widened(const at::Tensor& t) { return t.to(compute_dtype(t.scalar_type())); }

inline OptionalTensor widened(const OptionalTensor& t) {
  return t ? OptionalTensor(widened(*t)) : std::nullopt;
}

// The same call on float32 tensors (shape and schedule stay).
inline LayerArgs widened(const LayerArgs& a) {
  LayerArgs w = a;
  w.input = widened(a.input);
  w.h0 = widened(a.h0);
  w.c0 = widened(a.c0);
  w.w_ih = widened(a.w_ih);
  w.w_hh = widened(a.w_hh);
  w.bias = widened(a.bias);
  w.w_hr = widened(a.w_hr);
  return w;
}

// The workspace is float32 already.
inline BackwardArgs widened(const BackwardArgs& b) {
  return {widened(b.layer), widened(b.grad_output), widened(b.grad_h_n), widened(b.grad_c_n),
          widened(b.output), b.gates, b.cells};
}

// run(args) on widened arguments; output, h_n and c_n back in input's dtype.
template <typename Run>
LayerOutputs layer_in_float(Run&& run, const LayerArgs& a) {
  auto [out, h_n, c_n, gates, cells] = run(widened(a));
  const auto dt = a.input.scalar_type();
  return {out.to(dt), h_n.to(dt), c_n.to(dt), gates, cells};
}

// run(args) on widened arguments; every gradient back in input's dtype.
template <typename Run>
LayerGrads layer_backward_in_float(Run&& run, const BackwardArgs& b) {
  const auto dt = b.layer.input.scalar_type();
  return std::apply([&](const auto&... g) { return std::make_tuple(g.to(dt)...); }, run(widened(b)));
}

}  // namespace fastlstm
