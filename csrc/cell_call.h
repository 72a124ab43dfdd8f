// Functions of the module fastlstm._C itself (not ops): the eager call of one
// LSTMCell step (cell_call.cpp).
#pragma once

#include <Python.h>

namespace fastlstm {

// Adds them to fastlstm._C; 0 on success, -1 with a Python error set.
int add_python_functions(PyObject* module);

}  // namespace fastlstm
