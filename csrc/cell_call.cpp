// The eager call of one fastlstm.LSTMCell step from Python, in C: its common
// case (2-D input, hx a pair of the weights' dtype and device and of the
// right shapes, no __torch_function__ anywhere, no CUDA autocast) checked
// here, the two biases summed here (autograd records the sum, as it does the
// Python one), and the layer op called unboxed through the dispatcher, with
// every dispatch key (autograd, CUDA, the emulator, dispatch modes) as from
// torch.ops. The boxed call of torch.ops from Python and the module's checks
// in Python cost more than the arithmetic of a small cell step. Anything else
// returns None, and the module takes its general path (fastlstm/cell.py),
// which raises nn.LSTMCell's errors; torch.compile traces that path too.
#include <ATen/ATen.h>
#include <ATen/PythonTorchFunctionTLS.h>
#include <ATen/autocast_mode.h>
#include <torch/csrc/Exceptions.h>
#include <torch/csrc/autograd/python_variable.h>

#include <optional>

#include "cell_call.h"
#include "op_handles.h"

namespace fastlstm {
namespace {

// torch.nn.Parameter, whose __torch_function__ is torch's own.
PyTypeObject* parameter_type() {
  static PyTypeObject* type = [] {
    PyObject* module = PyImport_ImportModule("torch.nn.parameter");
    PyObject* cls = module ? PyObject_GetAttrString(module, "Parameter") : nullptr;
    Py_XDECREF(module);
    PyErr_Clear();
    return reinterpret_cast<PyTypeObject*>(cls);  // kept for the process
  }();
  return type;
}

// The tensor obj holds where it is a torch.Tensor or a Parameter, no
// subclass (whose __torch_function__ the general path honours); else null.
const at::Tensor* plain_tensor(PyObject* obj) {
  if (!THPVariable_CheckExact(obj) && Py_TYPE(obj) != parameter_type()) return nullptr;
  return &THPVariable_Unpack(obj);
}

bool like(const at::Tensor& t, const at::Tensor& weight) {
  return t.scalar_type() == weight.scalar_type() && t.device() == weight.device();
}

// The GIL released while the op runs, as torch's own bindings do.
class WithoutGil {
 public:
  WithoutGil() : state_(PyEval_SaveThread()) {}
  ~WithoutGil() { PyEval_RestoreThread(state_); }

 private:
  PyThreadState* state_;
};

struct CellArgs {
  const at::Tensor *x, *h0, *c0, *w_ih, *w_hh, *b_ih, *b_hh;
};

// The arguments of the common case, or nullopt.
std::optional<CellArgs> common_case(PyObject* const* args) {
  PyObject* hx = args[1];
  if (!PyTuple_Check(hx) || PyTuple_GET_SIZE(hx) != 2) return std::nullopt;
  const bool biased = args[4] != Py_None || args[5] != Py_None;
  CellArgs a{plain_tensor(args[0]),        plain_tensor(PyTuple_GET_ITEM(hx, 0)),
             plain_tensor(PyTuple_GET_ITEM(hx, 1)), plain_tensor(args[2]),
             plain_tensor(args[3]),        biased ? plain_tensor(args[4]) : nullptr,
             biased ? plain_tensor(args[5]) : nullptr};
  if (!a.x || !a.h0 || !a.c0 || !a.w_ih || !a.w_hh || (biased && (!a.b_ih || !a.b_hh))) {
    return std::nullopt;
  }
  const at::Tensor& w = *a.w_ih;
  if (a.x->dim() != 2 || w.dim() != 2 || a.w_hh->dim() != 2) return std::nullopt;
  const int64_t batch = a.x->size(0), hidden = a.w_hh->size(1);
  const bool shapes = a.x->size(1) == w.size(1) && w.size(0) == 4 * hidden &&
                      a.w_hh->size(0) == 4 * hidden && a.h0->dim() == 2 &&
                      a.h0->size(0) == batch && a.h0->size(1) == hidden &&
                      a.c0->sizes() == a.h0->sizes() &&
                      (!biased || (a.b_ih->dim() == 1 && a.b_ih->size(0) == 4 * hidden &&
                                   a.b_hh->sizes() == a.b_ih->sizes()));
  const bool kinds = like(*a.x, w) && like(*a.h0, w) && like(*a.c0, w) && like(*a.w_hh, w) &&
                     (!biased || (like(*a.b_ih, w) && like(*a.b_hh, w)));
  if (!shapes || !kinds) return std::nullopt;
  if (a.x->is_cuda() && at::autocast::is_autocast_enabled(at::kCUDA)) return std::nullopt;
  return a;
}

bool any_requires_grad(const CellArgs& a) {
  if (!at::GradMode::is_enabled()) return false;
  for (const at::Tensor* t : {a.x, a.h0, a.c0, a.w_ih, a.w_hh, a.b_ih, a.b_hh}) {
    if (t != nullptr && t->requires_grad()) return true;
  }
  return false;
}

// _cell_step(input, hx, w_ih, w_hh, b_ih, b_hh) -> (h, c), or None where the
// call is not the common case.
PyObject* cell_step(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  HANDLE_TH_ERRORS
  if (nargs != 6) {
    PyErr_SetString(PyExc_TypeError, "_cell_step(input, hx, w_ih, w_hh, b_ih, b_hh)");
    return nullptr;
  }
  // Under a torch function mode, the general path goes through torch.ops.
  if (at::impl::torch_function_mode_enabled()) Py_RETURN_NONE;
  const std::optional<CellArgs> a = common_case(args);
  if (!a) Py_RETURN_NONE;
  at::Tensor h, c;
  {
    WithoutGil released;
    std::optional<at::Tensor> bias;
    if (a->b_ih) bias = at::add(*a->b_ih, *a->b_hh);
    auto outputs = layer_op().call(*a->x, *a->h0, *a->c0, *a->w_ih, *a->w_hh, bias, std::nullopt,
                                   std::nullopt, false, any_requires_grad(*a));
    h = std::move(std::get<1>(outputs));
    c = std::move(std::get<2>(outputs));
  }
  PyObject* pair = PyTuple_New(2);
  if (pair == nullptr) return nullptr;
  PyTuple_SET_ITEM(pair, 0, THPVariable_Wrap(std::move(h)));
  PyTuple_SET_ITEM(pair, 1, THPVariable_Wrap(std::move(c)));
  return pair;
  END_HANDLE_TH_ERRORS
}

PyMethodDef kFunctions[] = {
    {"_cell_step", reinterpret_cast<PyCFunction>(reinterpret_cast<void*>(cell_step)),
     METH_FASTCALL,
     "_cell_step(input, hx, w_ih, w_hh, b_ih, b_hh) -> (h, c) or None: one LSTMCell step in "
     "its common case (fastlstm/cell.py)"},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

int add_python_functions(PyObject* module) { return PyModule_AddFunctions(module, kFunctions); }

}  // namespace fastlstm
