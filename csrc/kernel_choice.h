// Which CUDA kernel variant the glue runs: `auto` lets the glue decide per
// layer, the others force one (an error where it cannot run the layer).
// Resolved once per op call into LayerArgs::kernel and passed down; the
// names here are the only list of them (fastlstm.KERNELS reads it).
#pragma once

#include <string>
#include <vector>

namespace fastlstm {

enum class KernelChoice : int {
  kAuto,
  kStep,                  // the step kernels, tile variant chosen by the glue
  kStepNarrow,
  kStepWide,
  kTensorCore,            // the WMMA step kernels (half and bfloat16)
  kPersistent,
  kPersistentTensorCore,  // the 2-D forward on WMMA (half, bfloat16; float as TF32)
  kPersistent2d,          // the forward split over units and batch slices, flags per slice
};

const std::vector<std::string>& kernel_choice_names();  // indexed by KernelChoice
const char* kernel_choice_name(KernelChoice choice);
// The choice of that name, or a ValueError listing the names.
KernelChoice parse_kernel_choice(const std::string& name);

// The process-wide request of fastlstm.backend(kernel=...), which a backend
// reads once at the start of each op call (bodies of _set_kernel, _get_kernel).
KernelChoice requested_kernel();
void request_kernel(const std::string& name);
std::string requested_kernel_name();

// The variant the glue ran for the last layer forward in this library, for
// reports (body of _last_kernel); empty before any.
void record_kernel(KernelChoice ran);
std::string last_kernel();

}  // namespace fastlstm
