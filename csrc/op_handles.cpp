#include "op_handles.h"

namespace fastlstm {
namespace {

template <typename Signature>
c10::TypedOperatorHandle<Signature> typed_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

}  // namespace

const c10::TypedOperatorHandle<LayerOpSignature>& layer_op() {
  static const auto op = typed_op<LayerOpSignature>("fastlstm::lstm_layer");
  return op;
}

const c10::TypedOperatorHandle<BackwardOpSignature>& backward_op() {
  static const auto op = typed_op<BackwardOpSignature>("fastlstm::lstm_layer_backward");
  return op;
}

}  // namespace fastlstm
