// The fastlstm ops. Every backend (cpu/, the CUDA one in gpu/) implements
// exactly these and registers itself in its own file with TORCH_LIBRARY_IMPL;
// the layer ops' schemas are in op_schemas.h.
#include <Python.h>
#include <torch/library.h>

#include "cell_call.h"
#include "kernel_choice.h"
#include "op_schemas.h"
#include "cpu/engine.h"
#include "nvrtc/nvrtc_api.h"
#include "nvrtc/nvrtc_check.h"

extern "C" {
// Importing fastlstm._C loads this library, which runs the registrations.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr, nullptr, nullptr, nullptr, nullptr};
  PyObject* module = PyModule_Create(&module_def);
  if (module != nullptr && fastlstm::add_python_functions(module) != 0) Py_CLEAR(module);
  return module;
}
}

TORCH_LIBRARY(fastlstm, m) {
  m.def(fastlstm::kLayerSchema);
  m.def(fastlstm::kLayerBackwardSchema);
  // The gate nonlinearities exactly as a backend computes them, so that the
  // tests can bound their error against torch.sigmoid / torch.tanh.
  m.def("_gate_activations(Tensor x) -> (Tensor sigmoid, Tensor tanh)");
  // fastlstm.backend(kernel=...): the CUDA kernel variant the glue runs
  // (kernel_choice.h), and which one ran the last layer forward.
  m.def("_kernel_names() -> str[]", [] { return fastlstm::kernel_choice_names(); });
  m.def("_set_kernel(str name) -> ()", &fastlstm::request_kernel);
  m.def("_get_kernel() -> str", &fastlstm::requested_kernel_name);
  m.def("_last_kernel() -> str", &fastlstm::last_kernel);
  // Where NVRTC and the kernel sources are (fastlstm/_nvrtc.py, at import),
  // and the ops of python -m fastlstm nvrtc-check (nvrtc/nvrtc_check.h).
  m.def("_nvrtc_configure(str[] libraries, str[] include_dirs, str source_dir, str cache_dir, "
        "str missing) -> ()",
        &fastlstm::nvrtc::configure_nvrtc);
  m.def("_nvrtc_compile(str dtype, int arch) -> (Tensor cubin, str log, str[] instances, "
        "str[] lowered, str[] options)",
        &fastlstm::nvrtc::nvrtc_compile_op);
  m.def("_nvrtc_cache(str dtype, int arch) -> bool", &fastlstm::nvrtc::nvrtc_cache_op);
  m.def("_nvrtc_ptx(str dtype, int arch) -> (str ptx, str[] instances, str[] lowered)",
        &fastlstm::nvrtc::nvrtc_ptx_op);
  // The CPU engine's instruction set (avx512, avx2 or generic), for reports.
  m.def("_cpu_engine() -> str", &fastlstm::cpu::cpu_engine_name);
}
