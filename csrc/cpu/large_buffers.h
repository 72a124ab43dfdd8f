// Large buffers a layer fills once, page by page (gates, dgates, outputs,
// weight gradients). Fresh allocations of tens of MB come straight from
// mmap: the kernel faults them in and zeroes every page, on every call (7%
// of a fastrnns training step, perf), and malloc trims freed blocks of a
// MB (a single step's weight gradients) to fault them in again at the next
// step, while torch's own LSTM reuses small heap blocks. So blocks of
// 256 KB and more come from a small pool of blocks freed by earlier calls
// (a few, bounded in bytes), and fresh ones of 8 MB and more ask for 2 MB
// pages where the kernel backs memory with them on request.
#pragma once

#include <ATen/core/Tensor.h>

namespace fastlstm::cpu {

at::Tensor empty_large(at::IntArrayRef sizes, const at::TensorOptions& options);

}  // namespace fastlstm::cpu
