// Whether a layer runs on a persistent kernel, and how its grid is cut: the
// 1-D kernels (a block per slice of hidden units, a grid barrier per step),
// or, forward, the 2-D one (slices of units times slices of the batch, a
// step counter per batch slice). Part of the torch glue of the CUDA kernels.
#pragma once

#include <c10/util/Exception.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "../kernels/step_kernels.h"
#include "../lstm_args.h"

namespace fastlstm {

// Auto picks the 1-D persistent kernels up to this batch: beyond it a step
// has enough rows to fill the GPU on its own. On an H100 (fp32, T=100), forced
// persistent beat the step kernels up to B=32 at H=256..1024 and lost to them
// at B=64 for H >= 512 (bench/results/cuda-h100.md).
constexpr int64_t kPersistentMaxBatch = 32;

// units == 0: no persistent kernel (why_not says why); slice_rows > 0: the
// 2-D kernel with batch slices of that many rows.
struct PersistentPlan {
  int units = 0;
  bool tensor_cores = false;
  int slice_rows = 0;
  const char* why_not = "";
};

template <typename T>
constexpr bool has_tensor_cores() {
  return std::is_same_v<T, half_t> || std::is_same_v<T, bfloat16_t>;
}

// The 1-D kernels: the fewest units per block (so the most blocks) with
// which the whole grid is co-resident. The Tensor Core variants (half and
// bfloat16, H % 16 == 0) run only when forced: on an H100 they measured 2-5x
// slower than the scalar kernels, whose threads split each dot product
// (bench/results/cuda-h100.md).
template <typename T>
PersistentPlan plan_persistent(const StepKernels& kernels, const LayerShape& s, bool backward,
                               bool tensor_cores) {
  if (s.proj != s.hidden) return {0, false, 0, "a projection (proj_size) runs on the step kernels"};
  const int H = static_cast<int>(s.hidden), B = static_cast<int>(s.batch);
  if (tensor_cores && !(has_tensor_cores<T>() && H % 16 == 0)) {
    return {0, false, 0, "the Tensor Core kernels need half or bfloat16 and a hidden size that "
                         "is a multiple of 16"};
  }
  const PersistentKernel kernel =
      backward ? (tensor_cores ? PersistentKernel::kBackwardTensorCore : PersistentKernel::kBackward)
               : (tensor_cores ? PersistentKernel::kForwardTensorCore : PersistentKernel::kForward);
  for (int units = 1; units <= PersistentTile::kMaxUnits; ++units) {
    size_t bytes = 0;
    switch (kernel) {
      case PersistentKernel::kForwardTensorCore:
        bytes = PersistentTile::tensor_core_forward_bytes(H, units, B);
        break;
      case PersistentKernel::kBackward:
        bytes = PersistentTile::backward_elems(H, units, B) * sizeof(acc_t<T>);
        break;
      case PersistentKernel::kBackwardTensorCore:
        bytes = PersistentTile::tensor_core_backward_bytes(H, units, B);
        break;
      default:
        bytes = PersistentTile::forward_elems(H, units, B) * sizeof(acc_t<T>);
    }
    if (kernels.persistent_capacity(storage_type_of<T>(), kernel, bytes) >= ceil_div(H, units)) {
      return {units, tensor_cores, 0, ""};
    }
  }
  return {0, false, 0,
          "its W_hh slices and per-row state do not fit on chip at this hidden size and batch"};
}

// The 2-D kernels: of the cuts whose grid is co-resident, the one with the
// shortest step by a simple model: a block's FMAs over its 256 threads, plus
// its staging from L2 (a 64-byte line a cycle) of h_{t-1} (forward) or of
// the step's dgates (backward, 4H a row), both growing with its share.
template <typename T>
PersistentPlan plan_persistent_2d(const StepKernels& kernels, const LayerShape& s,
                                  bool backward) {
  if (s.proj != s.hidden) return {0, false, 0, "a projection (proj_size) runs on the step kernels"};
  const int H = static_cast<int>(s.hidden), B = static_cast<int>(s.batch);
  struct Cut {
    int units, slice_rows, blocks;
    double cost;
  };
  std::vector<Cut> cuts;
  for (int units = 1; units <= std::min(PersistentTile::kMaxUnits, std::max(H, 1)); units *= 2) {
    for (int slices = 1, last = 0; slices <= std::max(B, 1); ++slices) {
      const int rows = ceil_div(std::max(B, 1), slices);
      if (rows == last) continue;
      last = rows;
      const int blocks = ceil_div(H, units) * ceil_div(std::max(B, 1), rows);
      if (blocks > 8 * kernels.multiprocessors()) continue;
      const double fmas = 4.0 * units * rows * H / Persistent2dTile::kThreads;
      const double staging = double(rows) * (backward ? 4 : 1) * H * sizeof(acc_t<T>) / 64.0;
      cuts.push_back({units, rows, blocks, fmas + staging});
    }
  }
  std::sort(cuts.begin(), cuts.end(), [](const Cut& a, const Cut& b) {
    return a.cost != b.cost ? a.cost < b.cost : a.blocks < b.blocks;
  });
  const PersistentKernel kernel =
      backward ? PersistentKernel::kBackward2d : PersistentKernel::kForward2d;
  for (const Cut& cut : cuts) {
    const size_t bytes = backward
                             ? Persistent2dTile::backward_bytes<T>(H, cut.units, cut.slice_rows)
                             : Persistent2dTile::forward_bytes<T>(H, cut.units, cut.slice_rows);
    if (kernels.persistent_capacity(storage_type_of<T>(), kernel, bytes) >= cut.blocks) {
      return {cut.units, false, cut.slice_rows, ""};
    }
  }
  return {0, false, 0, "no cut of its units and batch fits on chip with every block resident"};
}

// Whether a persistent kernel runs: forced, refused, or the auto rule: the
// 2-D kernels where they fit, else the 1-D ones up to kPersistentMaxBatch.
template <typename T>
PersistentPlan choose_persistent(const StepKernels& kernels, const LayerArgs& a, bool backward) {
  const KernelChoice k = a.kernel;
  const LayerShape& s = a.shape;
  const bool one_d = k == KernelChoice::kPersistent || k == KernelChoice::kPersistentTensorCore;
  PersistentPlan plan;
  if (k == KernelChoice::kAuto || k == KernelChoice::kPersistent2d) {
    plan = plan_persistent_2d<T>(kernels, s, backward);
  }
  if (plan.units == 0 && (one_d || k == KernelChoice::kAuto)) {
    plan = plan_persistent<T>(kernels, s, backward, k == KernelChoice::kPersistentTensorCore);
    if (k == KernelChoice::kAuto && s.batch > kPersistentMaxBatch) plan = {};
  }
  TORCH_CHECK(!(one_d || k == KernelChoice::kPersistent2d) || plan.units > 0,
              "fastlstm: kernel='", kernel_choice_name(k), "' cannot run this layer (hidden ",
              s.hidden, ", batch ", s.batch, "): ", plan.why_not);
  return plan;
}

}  // namespace fastlstm
