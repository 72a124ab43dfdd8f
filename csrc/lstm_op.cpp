// Schemas of the fastlstm ops. Every backend (cpu/, cuda/) implements exactly
// these and registers itself in its own file with TORCH_LIBRARY_IMPL.
//
// One call runs one layer in one direction over a whole sequence. Sequences
// are time-major rows, as in a PackedSequence's data: step t owns rows
// [offset_t, offset_t + batch_t), and batch_t never grows with t. A plain
// [T, B, I] input is the same thing reshaped to [T*B, I] with batch_t = B,
// which is what batch_sizes=None means.
#include <Python.h>
#include <torch/library.h>

#include "backend_switch.h"
#include "cpu/engine.h"

extern "C" {
// Importing fastlstm._C loads this library, which runs the registrations.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr, nullptr, nullptr, nullptr, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(fastlstm, m) {
  // input: [N, I]  h0: [B, P]  c0: [B, H]  w_ih: [4H, I]  w_hh: [4H, P]
  // bias: [4H] (b_ih + b_hh)  w_hr: [P, H] (P = H without projection)
  // batch_sizes: int64 [T] on the CPU, or None for N = T*B full batches.
  // Returns output [N, P], h_n [B, P], c_n [B, H] and the backward
  // workspace: activated gates [N, 4H] and cell states [N, H]. Without
  // save_workspace (inference) both come back empty and the forward keeps
  // only a few steps of gates at a time.
  m.def(
      "lstm_layer(Tensor input, Tensor h0, Tensor c0, Tensor w_ih, Tensor w_hh, "
      "Tensor? bias, Tensor? w_hr, Tensor? batch_sizes, bool reverse, bool save_workspace) "
      "-> (Tensor output, Tensor h_n, Tensor c_n, Tensor gates, Tensor cells)");
  // grad_bias is always returned (the bias-free layer ignores it); grad_w_hr
  // is empty without projection.
  m.def(
      "lstm_layer_backward(Tensor grad_output, Tensor grad_h_n, Tensor grad_c_n, "
      "Tensor input, Tensor h0, Tensor c0, Tensor w_ih, Tensor w_hh, Tensor? w_hr, "
      "Tensor? batch_sizes, bool reverse, Tensor output, Tensor gates, Tensor cells) "
      "-> (Tensor grad_input, Tensor grad_h0, Tensor grad_c0, Tensor grad_w_ih, "
      "Tensor grad_w_hh, Tensor grad_bias, Tensor grad_w_hr)");
  // The gate nonlinearities exactly as a backend computes them, so that the
  // tests can bound their error against torch.sigmoid / torch.tanh.
  m.def("_gate_activations(Tensor x) -> (Tensor sigmoid, Tensor tanh)");
  // fastlstm.backend(...): which implementation runs CPU tensors (native or
  // the CUDA kernels under the SIMT emulator), which kernel variant the glue
  // uses, and the emulator's scheduling order. Not backends: plain settings.
  m.def("_set_backend(str name, str kernel, str order, int seed) -> ()", &fastlstm::set_backend);
  m.def("_get_backend() -> (str, str, str, int)", &fastlstm::get_backend);
  m.def("_last_kernel() -> str", &fastlstm::last_kernel);
  // The CPU engine's instruction set (avx512, avx2 or generic), for reports.
  m.def("_cpu_engine() -> str", &fastlstm::cpu::cpu_engine_name);
}
