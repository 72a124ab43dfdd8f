#include "lstm_args.h"

#include <ATen/Context.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <limits>

namespace fastlstm {
namespace {

void check_shape(const at::Tensor& t, const char* name, at::IntArrayRef expected) {
  TORCH_CHECK(t.sizes() == expected, "fastlstm: expected ", name, " of shape ", expected,
              ", got ", t.sizes());
}

void check_like(const at::Tensor& t, const char* name, const at::Tensor& input) {
  TORCH_CHECK(t.scalar_type() == input.scalar_type(), "fastlstm: expected ", name, " of dtype ",
              input.scalar_type(), " (the input's), got ", t.scalar_type());
  TORCH_CHECK(t.device() == input.device(), "fastlstm: expected ", name, " on ", input.device(),
              " (the input's device), got ", t.device());
}

void check_batch_sizes(const at::Tensor& bs, int64_t rows, int64_t batch) {
  TORCH_CHECK(bs.dim() == 1 && bs.scalar_type() == at::kLong && bs.device().is_cpu() &&
                  bs.layout() == at::kStrided,
              "fastlstm: expected batch_sizes as a 1-D int64 CPU tensor, got ", bs.dim(),
              "-D ", bs.scalar_type(), " on ", bs.device(), " (layout ", bs.layout(), ")");
  // Read through strides: batch_sizes may be a view (a slice, an expand).
  const auto acc = bs.accessor<int64_t, 1>();
  int64_t total = 0;
  for (int64_t t = 0; t < acc.size(0); ++t) {
    const int64_t prev = t == 0 ? batch : acc[t - 1];
    TORCH_CHECK(acc[t] > 0 && acc[t] <= prev,
                "fastlstm: expected batch_sizes positive and non-increasing, starting at the "
                "batch size of h0 (",
                batch, "); got ", acc[t], " at step ", t);
    total += acc[t];
  }
  TORCH_CHECK(acc.size(0) == 0 || acc[0] == batch, "fastlstm: expected batch_sizes[0] == ",
              batch, " (the batch size of h0), got ", acc[0]);
  TORCH_CHECK(total == rows, "fastlstm: expected batch_sizes to sum to the ", rows,
              " input rows, got ", total);
}

LayerShape layer_shape(const LayerArgs& a) {
  const at::Tensor &input = a.input, &h0 = a.h0, &c0 = a.c0, &w_ih = a.w_ih, &w_hh = a.w_hh;
  const OptionalTensor &bias = a.bias, &w_hr = a.w_hr;
  TORCH_CHECK(input.dim() == 2, "fastlstm: expected input of shape [rows, input_size], got ",
              input.dim(), "-D ", input.sizes());
  TORCH_CHECK(at::isFloatingType(input.scalar_type()),
              "fastlstm: expected a floating-point input, got ", input.scalar_type());
  TORCH_CHECK(w_ih.dim() == 2 && w_ih.size(0) % 4 == 0,
              "fastlstm: expected w_ih of shape [4*hidden_size, input_size], got ", w_ih.sizes());
  TORCH_CHECK(!w_hr.has_value() || (w_hr->dim() == 2 && w_hr->size(0) > 0),
              "fastlstm: expected w_hr of shape [proj_size, hidden_size] with proj_size > 0 "
              "(no w_hr for a layer without projection), got ", w_hr->sizes());
  LayerShape s;
  s.rows = input.size(0);
  s.input = input.size(1);
  s.hidden = w_ih.size(0) / 4;
  s.proj = w_hr.has_value() ? w_hr->size(0) : s.hidden;
  s.batch = h0.dim() == 2 ? h0.size(0) : -1;
  TORCH_CHECK(h0.dim() == 2, "fastlstm: expected h0 of shape [batch, ", s.proj, "], got ",
              h0.sizes());

  check_shape(w_ih, "w_ih", {4 * s.hidden, s.input});
  check_shape(w_hh, "w_hh", {4 * s.hidden, s.proj});
  check_shape(h0, "h0", {s.batch, s.proj});
  check_shape(c0, "c0", {s.batch, s.hidden});
  for (auto [t, name] : {std::pair{&h0, "h0"}, {&c0, "c0"}, {&w_ih, "w_ih"}, {&w_hh, "w_hh"}}) {
    check_like(*t, name, input);
  }
  if (bias.has_value()) {
    check_shape(*bias, "bias", {4 * s.hidden});
    check_like(*bias, "bias", input);
  }
  if (w_hr.has_value()) {
    check_shape(*w_hr, "w_hr", {s.proj, s.hidden});
    check_like(*w_hr, "w_hr", input);
  }
  if (a.batch_sizes.has_value()) {
    check_batch_sizes(*a.batch_sizes, s.rows, s.batch);
  } else {
    TORCH_CHECK(s.batch > 0 ? s.rows % s.batch == 0 : s.rows == 0, "fastlstm: expected the ",
                s.rows, " input rows to be a whole number of steps of batch ", s.batch);
  }
  return s;
}

void check_backward_tensors(const BackwardArgs& b) {
  const LayerShape& s = b.layer.shape;
  const at::Tensor &grad_output = b.grad_output, &grad_h_n = b.grad_h_n, &grad_c_n = b.grad_c_n;
  const at::Tensor &output = b.output, &gates = b.gates, &cells = b.cells;
  check_shape(grad_output, "grad_output", {s.rows, s.proj});
  check_shape(grad_h_n, "grad_h_n", {s.batch, s.proj});
  check_shape(grad_c_n, "grad_c_n", {s.batch, s.hidden});
  check_shape(output, "output", {s.rows, s.proj});
  check_shape(gates, "gates", {s.rows, 4 * s.hidden});
  check_shape(cells, "cells", {s.rows, s.hidden});
  for (auto [t, name] :
       {std::pair{&grad_output, "grad_output"}, {&grad_h_n, "grad_h_n"}, {&grad_c_n, "grad_c_n"}}) {
    check_like(*t, name, output);
  }
  const at::ScalarType workspace_dtype = compute_dtype(output.scalar_type());
  for (auto [t, name] : {std::pair{&gates, "gates"}, {&cells, "cells"}}) {
    TORCH_CHECK(t->scalar_type() == workspace_dtype, "fastlstm: expected ", name, " of dtype ",
                workspace_dtype, ", got ", t->scalar_type());
    TORCH_CHECK(t->device() == output.device(), "fastlstm: expected ", name, " on ",
                output.device(), ", got ", t->device());
  }
}

StepSchedule make_schedule(const LayerShape& s, const OptionalTensor& batch_sizes) {
  StepSchedule sched;
  if (batch_sizes.has_value()) {
    const auto acc = batch_sizes->accessor<int64_t, 1>();  // honours the strides
    for (int64_t t = 0; t < acc.size(0); ++t) sched.batch.push_back(acc[t]);
  } else if (s.batch > 0) {
    sched.batch.assign(s.rows / s.batch, s.batch);
  }
  sched.offset.resize(sched.batch.size());
  int64_t offset = 0;
  for (size_t t = 0; t < sched.batch.size(); ++t) {
    sched.offset[t] = offset;
    offset += sched.batch[t];
  }
  return sched;
}

}  // namespace

at::ScalarType compute_dtype(at::ScalarType storage) {
  return storage == at::kHalf || storage == at::kBFloat16 ? at::kFloat : storage;
}

LayerArgs checked(LayerArgs args) {
  args.shape = layer_shape(args);
  args.allow_tf32 = args.input.scalar_type() == at::kFloat &&
                    at::globalContext().allowTF32CuDNN(at::Float32Op::RNN);
  args.schedule = make_schedule(args.shape, args.batch_sizes);
  return args;
}

BackwardArgs checked(BackwardArgs args) {
  args.layer = checked(std::move(args.layer));
  check_backward_tensors(args);
  return args;
}

}  // namespace fastlstm
