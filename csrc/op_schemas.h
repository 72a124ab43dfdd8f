// The schemas of the layer ops, as text: the fastlstm library defines them
// (csrc/lstm_op.cpp) and the emulated one (csrc/emulated/) defines the same
// ops in its own namespace, so that its kernels can stand in for the CPU ones.
//
// One call runs one layer in one direction over a whole sequence. Sequences
// are time-major rows, as in a PackedSequence's data: step t owns rows
// [offset_t, offset_t + batch_t), and batch_t never grows with t. A plain
// [T, B, I] input is the same thing reshaped to [T*B, I] with batch_t = B,
// which is what batch_sizes=None means.
#pragma once

namespace fastlstm {

// input: [N, I]  h0: [B, P]  c0: [B, H]  w_ih: [4H, I]  w_hh: [4H, P]
// bias: [4H] (b_ih + b_hh)  w_hr: [P, H] (P = H without projection)
// batch_sizes: int64 [T] on the CPU, or None for N = T*B full batches.
// Returns output [N, P], h_n [B, P], c_n [B, H] and the backward
// workspace: activated gates [N, 4H] and cell states [N, H]. Without
// save_workspace (inference) both come back empty and the forward keeps
// only a few steps of gates at a time.
constexpr const char* kLayerSchema =
    "lstm_layer(Tensor input, Tensor h0, Tensor c0, Tensor w_ih, Tensor w_hh, "
    "Tensor? bias, Tensor? w_hr, Tensor? batch_sizes, bool reverse, bool save_workspace) "
    "-> (Tensor output, Tensor h_n, Tensor c_n, Tensor gates, Tensor cells)";

// grad_bias is always returned (the bias-free layer ignores it); grad_w_hr
// is empty without projection.
constexpr const char* kLayerBackwardSchema =
    "lstm_layer_backward(Tensor grad_output, Tensor grad_h_n, Tensor grad_c_n, "
    "Tensor input, Tensor h0, Tensor c0, Tensor w_ih, Tensor w_hh, Tensor? w_hr, "
    "Tensor? batch_sizes, bool reverse, Tensor output, Tensor gates, Tensor cells) "
    "-> (Tensor grad_input, Tensor grad_h0, Tensor grad_c0, Tensor grad_w_ih, "
    "Tensor grad_w_hh, Tensor grad_bias, Tensor grad_w_hr)";

}  // namespace fastlstm
