// Large buffers a layer fills once, page by page (gates, dgates, outputs).
// Fresh allocations of tens of MB come straight from mmap and fault in 4 KB
// at a time: ~13,000 faults for the 52 MB gate buffer of the fastrnns shape,
// a visible share of a training step. Where the kernel backs memory with
// 2 MB pages on request (transparent huge pages in "madvise" mode), asking
// for them cuts that to a few dozen; elsewhere nothing changes.
#pragma once

#include <ATen/core/Tensor.h>

namespace fastlstm::cpu {

at::Tensor empty_large(at::IntArrayRef sizes, const at::TensorOptions& options);

}  // namespace fastlstm::cpu
