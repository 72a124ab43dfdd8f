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

// The 1-D kernels: the fewest units per block (so the most blocks) with
// which the whole grid is co-resident.
template <typename T>
PersistentPlan plan_persistent(const StepKernels& kernels, const LayerShape& s, bool backward) {
  if (s.proj != s.hidden) return {0, false, 0, "a projection (proj_size) runs on the step kernels"};
  const int H = static_cast<int>(s.hidden), B = static_cast<int>(s.batch);
  const PersistentKernel kernel = backward ? PersistentKernel::kBackward : PersistentKernel::kForward;
  for (int units = 1; units <= PersistentTile::kMaxUnits; ++units) {
    const size_t bytes = (backward ? PersistentTile::backward_elems(H, units, B)
                                   : PersistentTile::forward_elems(H, units, B)) *
                         sizeof(acc_t<T>);
    if (kernels.persistent_capacity(storage_type_of<T>(), kernel, bytes) >= ceil_div(H, units)) {
      return {units, false, 0, ""};
    }
  }
  return {0, false, 0,
          "its W_hh slices and per-row state do not fit on chip at this hidden size and batch"};
}

// A cut of the 2-D kernels: units per block and rows per batch slice, and
// the length of a step by a simple model (a block's multiply-adds and its
// staging of h_{t-1}, or of the step's dgates, from L2 at a 64-byte line a
// cycle), plus a flag handshake where a batch slice spans several blocks.
struct Cut {
  int units, slice_rows, blocks;
  double cost;
};

// A step's wait for the other blocks of its batch slice, in the cycles of
// the cost above: about 2 us, the grid barrier base fitted on an H100
// (bench/results/gpu-model-h100.md), which the flag handshake is taken at.
constexpr double kHandshakeCycles = 4000;

template <typename T>
std::vector<Cut> cuts_2d(const StepKernels& kernels, const LayerShape& s, bool backward,
                         bool tensor_cores) {
  const int H = static_cast<int>(s.hidden), B = std::max(static_cast<int>(s.batch), 1);
  // Tensor Cores: 32 units a block. Scalar: powers of two, and the whole
  // layer where one block can hold it.
  std::vector<int> unit_choices;
  if (tensor_cores) {
    unit_choices.push_back(Persistent2dTensorCoreTile::kUnits);
  } else {
    for (int units = 1; units < H && units <= Persistent2dTile::kMaxUnits; units *= 2) {
      unit_choices.push_back(units);
    }
    if (H <= Persistent2dTile::kMaxUnits) unit_choices.push_back(std::max(H, 1));
  }
  std::vector<Cut> cuts;
  for (int units : unit_choices) {
    for (int slices = 1, last = 0; slices <= B; ++slices) {
      const int rows = ceil_div(B, slices);
      if (rows == last) continue;
      last = rows;
      const int blocks = ceil_div(H, units) * ceil_div(B, rows);
      if (blocks > 8 * kernels.multiprocessors()) continue;
      // Tensor Cores take a whole pass of rows (16, or 8 for half and
      // bfloat16 slices of at most 8), whatever the slice leaves empty, at
      // about eight times the scalar rate.
      const int tc_pass = Persistent2dTensorCoreTile::pass_rows<T>(rows);
      const int pass_rows = tensor_cores ? tc_pass * ceil_div(rows, tc_pass) : rows;
      const double fmas =
          4.0 * units * pass_rows * H / Persistent2dTile::kThreads / (tensor_cores ? 8 : 1);
      const double staging = double(pass_rows) * (backward ? 4 : 1) * H * sizeof(acc_t<T>) / 64.0;
      const double handshake = units < H ? kHandshakeCycles : 0.0;
      cuts.push_back({units, rows, blocks, fmas + staging + handshake});
    }
  }
  std::sort(cuts.begin(), cuts.end(), [](const Cut& a, const Cut& b) {
    return a.cost != b.cost ? a.cost < b.cost : a.blocks < b.blocks;
  });
  return cuts;
}

// The 2-D kernels: of the cuts whose grid is co-resident, the shortest step.
// The Tensor Core forward takes 32 units a block (H a multiple of 32).
template <typename T>
PersistentPlan plan_persistent_2d(const StepKernels& kernels, const LayerShape& s, bool backward,
                                  bool tensor_cores) {
  if (s.proj != s.hidden) return {0, false, 0, "a projection (proj_size) runs on the step kernels"};
  const int H = static_cast<int>(s.hidden);
  if (tensor_cores && H % Persistent2dTensorCoreTile::kUnits != 0) {
    return {0, false, 0, "the Tensor Core kernel needs a hidden size that is a multiple of 32"};
  }
  const PersistentKernel kernel =
      tensor_cores ? (backward ? PersistentKernel::kBackward2dTensorCore
                               : PersistentKernel::kForward2dTensorCore)
                   : (backward ? PersistentKernel::kBackward2d : PersistentKernel::kForward2d);
  for (const Cut& cut : cuts_2d<T>(kernels, s, backward, tensor_cores)) {
    const size_t bytes =
        tensor_cores
            ? (backward ? Persistent2dTensorCoreTile::backward_bytes<T>(H, cut.slice_rows)
                        : Persistent2dTensorCoreTile::forward_bytes<T>(H, cut.slice_rows))
            : (backward ? Persistent2dTile::backward_bytes<T>(H, cut.units, cut.slice_rows)
                        : Persistent2dTile::forward_bytes<T>(H, cut.units, cut.slice_rows));
    if (kernels.persistent_capacity(storage_type_of<T>(), kernel, bytes) >= cut.blocks) {
      return {cut.units, tensor_cores, cut.slice_rows, ""};
    }
  }
  return {0, false, 0, "no cut of its units and batch fits on chip with every block resident"};
}

// Whether the layer may multiply on Tensor Cores: half and bfloat16, or float
// as TF32 where torch allows it for cuDNN's RNNs; W_hh 32-byte aligned.
template <typename T>
const char* tensor_cores_refused_persistent(const LayerArgs& a) {
  const bool tf32 = std::is_same_v<T, float> && a.allow_tf32;
  if (!(std::is_same_v<T, half_t> || std::is_same_v<T, bfloat16_t> || tf32)) {
    return "Tensor Core kernels take half or bfloat16, or float with TF32 allowed "
           "(torch.backends.cudnn.allow_tf32)";
  }
  if (reinterpret_cast<uintptr_t>(a.w_hh.data_ptr()) % 32 != 0) {
    return "Tensor Core kernels need W_hh 32-byte aligned";
  }
  return nullptr;
}

// Below this batch a Tensor Core pass (8 or 16 rows) is mostly padding: auto
// keeps the scalar 2-D kernel there.
constexpr int64_t kTensorCoreMinBatch = 4;

// Whether a persistent kernel runs: forced, refused, or the auto rule: for
// more than one step, the 2-D kernels where they fit (the Tensor Core ones
// where they apply, from kTensorCoreMinBatch), else the 1-D ones up to
// kPersistentMaxBatch. Forcing the Tensor Core variant forces its forward;
// its backward runs where it fits on chip, else the scalar 2-D one.
template <typename T>
PersistentPlan choose_persistent(const StepKernels& kernels, const LayerArgs& a, bool backward) {
  const KernelChoice k = a.kernel;
  const LayerShape& s = a.shape;
  const bool is_auto = k == KernelChoice::kAuto;
  // One step (an LSTMCell) keeps nothing on chip across steps: the step
  // kernels, without the planning's occupancy queries.
  if (is_auto && a.schedule.steps() <= 1) return {};
  const bool tc_forced = k == KernelChoice::kPersistentTensorCore;
  const char* refused = tensor_cores_refused_persistent<T>(a);
  PersistentPlan plan;
  if (tc_forced || (is_auto && !refused && s.batch >= kTensorCoreMinBatch)) {
    plan = refused ? PersistentPlan{0, false, 0, refused}
                   : plan_persistent_2d<T>(kernels, s, backward, true);
  }
  const bool scalar_2d = is_auto || k == KernelChoice::kPersistent2d || (tc_forced && backward);
  if (plan.units == 0 && scalar_2d) plan = plan_persistent_2d<T>(kernels, s, backward, false);
  if (plan.units == 0 && (is_auto || k == KernelChoice::kPersistent)) {
    plan = plan_persistent<T>(kernels, s, backward);
    if (is_auto && s.batch > kPersistentMaxBatch) plan = {};
  }
  const bool forced = k == KernelChoice::kPersistent || k == KernelChoice::kPersistent2d ||
                      (tc_forced && !backward);
  TORCH_CHECK(!forced || plan.units > 0, "fastlstm: kernel='", kernel_choice_name(k),
              "' cannot run this layer (hidden ", s.hidden, ", batch ", s.batch, "): ",
              plan.why_not);
  return plan;
}

}  // namespace fastlstm
