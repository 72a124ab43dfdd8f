// Typed handles of the fastlstm ops, for unboxed calls from C++ through the
// dispatcher (the autograd kernels, the eager LSTMCell call).
#pragma once

#include <ATen/core/dispatch/Dispatcher.h>

#include "op_kernels.h"

namespace fastlstm {

const c10::TypedOperatorHandle<LayerOpSignature>& layer_op();
const c10::TypedOperatorHandle<BackwardOpSignature>& backward_op();

}  // namespace fastlstm
