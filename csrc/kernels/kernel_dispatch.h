// Picks the kernel instance for a variant and its launch shape, and hands
// both, as a tag (kernel_instances.h) and a LaunchConfig, to `launch`: the
// nvcc library launches the instance on its stream, the emulator on its
// threads, the NVRTC executor through the driver. One place maps variants
// to instances and shapes, so every executor runs the GPU's configurations.
// Host code only, free of CUDA headers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernel_instances.h"
#include "static_switch.h"
#include "step_params.h"

namespace fastlstm {

// How one kernel is launched: a 1-D block, a grid of up to two dimensions.
struct LaunchConfig {
  unsigned grid_x, grid_y;
  unsigned threads;     // per block
  size_t shared_bytes;  // dynamic shared memory per block
  bool cooperative;     // every block resident at once (grid-wide sync)
};

template <typename T>
constexpr bool kHasTensorCoreKernels =
    std::is_same<T, half_t>::value || std::is_same<T, bfloat16_t>::value;

template <typename T, StepVariant kVariant, typename Launch>
void launch_forward_step(const ForwardStepParams<T>& p, bool save, Launch&& launch) {
  constexpr int kRows = ForwardTile::rows_per_thread(kVariant);
  const LaunchConfig c{(unsigned)ForwardTile::blocks_x(p.hidden),
                       (unsigned)ForwardTile::blocks_y(p.rows, kVariant), ForwardTile::kThreads, 0,
                       false};
  BOOL_SWITCH(save, kSave, [&] { launch(c, ForwardStepKernel<T, kRows, kSave>{}, p); });
}

template <typename T, typename Launch>
void dispatch_forward_step(const ForwardStepParams<T>& p, StepVariant variant, bool save,
                           Launch&& launch) {
  if constexpr (kHasTensorCoreKernels<T>) {
    if (variant == StepVariant::kTensorCore) {
      constexpr int kTile = TensorCoreTile::kTile;
      const LaunchConfig c{(unsigned)ceil_div(p.hidden, kTile), (unsigned)ceil_div(p.rows, kTile),
                           TensorCoreTile::kThreads, 0, false};
      BOOL_SWITCH(save, kSave, [&] { launch(c, ForwardStepTensorCoreKernel<T, kSave>{}, p); });
      return;
    }
  }
  if (variant == StepVariant::kWide) {
    launch_forward_step<T, StepVariant::kWide>(p, save, launch);
  } else {
    launch_forward_step<T, StepVariant::kNarrow>(p, save, launch);
  }
}

template <typename T, StepVariant kVariant, typename Launch>
void launch_backward_step(const BackwardStepParams<T>& p, Launch&& launch) {
  constexpr int kRows = BackwardTile::rows_per_thread(kVariant);
  const LaunchConfig c{(unsigned)BackwardTile::blocks_x(p.proj),
                       (unsigned)BackwardTile::blocks_y(p.rows, kVariant), BackwardTile::kThreads,
                       0, false};
  launch(c, BackwardStepKernel<T, kRows>{}, p);
}

template <typename T, typename Launch>
void dispatch_backward_step(const BackwardStepParams<T>& p, StepVariant variant,
                            Launch&& launch) {
  if constexpr (kHasTensorCoreKernels<T>) {
    if (variant == StepVariant::kTensorCore) {
      const LaunchConfig c{(unsigned)ceil_div(p.proj, TensorCoreTile::kCols),
                           (unsigned)ceil_div(p.rows, TensorCoreTile::kTile),
                           TensorCoreTile::kThreads, 0, false};
      launch(c, BackwardStepTensorCoreKernel<T>{}, p);
      return;
    }
  }
  if (variant == StepVariant::kWide) {
    launch_backward_step<T, StepVariant::kWide>(p, launch);
  } else {
    launch_backward_step<T, StepVariant::kNarrow>(p, launch);
  }
}

// Persistent kernels: one cooperative launch with the W_hh slices in
// dynamic shared memory (the 2-D ones where slice_rows > 0).
template <typename T, typename Launch>
void dispatch_persistent_forward_2d(const PersistentForwardParams<T>& p, bool save,
                                    Launch&& launch) {
  if constexpr (kHasTensorCoreKernels<T> || std::is_same<T, float>::value) {
    if (p.tensor_cores) {
      using Tile = Persistent2dTensorCoreTile;
      const LaunchConfig c{(unsigned)ceil_div(p.hidden, Tile::kUnits),
                           (unsigned)ceil_div(p.batch, p.slice_rows), Tile::kThreads,
                           Tile::forward_bytes<T>(p.hidden, p.slice_rows), true};
      BOOL_SWITCH(save, kSave, [&] {
        if (Tile::pass_rows<T>(p.slice_rows) == Tile::kRows) {
          launch(c, ForwardPersistent2dTensorCoreKernel<T, Tile::kRows, kSave>{}, p);
        } else if constexpr (kHasTensorCoreKernels<T>) {
          launch(c, ForwardPersistent2dTensorCoreKernel<T, Tile::kSmallRows, kSave>{}, p);
        }
      });
      return;
    }
  }
  const LaunchConfig c{(unsigned)ceil_div(p.hidden, p.units),
                       (unsigned)ceil_div(p.batch, p.slice_rows), Persistent2dTile::kThreads,
                       Persistent2dTile::forward_bytes<T>(p.hidden, p.units, p.slice_rows), true};
  const bool wide = Persistent2dTile::rows_per_thread(p.units, p.slice_rows) > 1;
  BOOL_SWITCH(save, kSave, [&] {
    if (wide) {
      launch(c, ForwardPersistent2dKernel<T, 4, kSave>{}, p);
    } else {
      launch(c, ForwardPersistent2dKernel<T, 1, kSave>{}, p);
    }
  });
}

template <typename T, typename Launch>
void dispatch_persistent_forward(const PersistentForwardParams<T>& p, bool save,
                                 Launch&& launch) {
  if (p.slice_rows > 0) return dispatch_persistent_forward_2d(p, save, launch);
  const LaunchConfig c{(unsigned)ceil_div(p.hidden, p.units), 1, PersistentTile::kThreads,
                       PersistentTile::forward_elems(p.hidden, p.units, p.batch) *
                           sizeof(acc_t<T>),
                       true};
  BOOL_SWITCH(save, kSave, [&] { launch(c, ForwardPersistentKernel<T, kSave>{}, p); });
}

template <typename T, typename Launch>
void dispatch_persistent_backward_2d(const PersistentBackwardParams<T>& p, Launch&& launch) {
  if constexpr (kHasTensorCoreKernels<T> || std::is_same<T, float>::value) {
    if (p.tensor_cores) {
      using Tile = Persistent2dTensorCoreTile;
      const LaunchConfig c{(unsigned)ceil_div(p.hidden, Tile::kUnits),
                           (unsigned)ceil_div(p.batch, p.slice_rows), Tile::kThreads,
                           Tile::backward_bytes<T>(p.hidden, p.slice_rows), true};
      if (Tile::pass_rows<T>(p.slice_rows) == Tile::kRows) {
        launch(c, BackwardPersistent2dTensorCoreKernel<T, Tile::kRows>{}, p);
      } else if constexpr (kHasTensorCoreKernels<T>) {
        launch(c, BackwardPersistent2dTensorCoreKernel<T, Tile::kSmallRows>{}, p);
      }
      return;
    }
  }
  const LaunchConfig c{(unsigned)ceil_div(p.hidden, p.units),
                       (unsigned)ceil_div(p.batch, p.slice_rows), Persistent2dTile::kThreads,
                       Persistent2dTile::backward_bytes<T>(p.hidden, p.units, p.slice_rows), true};
  if (Persistent2dTile::rows_per_thread(p.units, p.slice_rows) > 1) {
    launch(c, BackwardPersistent2dKernel<T, 4>{}, p);
  } else {
    launch(c, BackwardPersistent2dKernel<T, 1>{}, p);
  }
}

template <typename T, typename Launch>
void dispatch_persistent_backward(const PersistentBackwardParams<T>& p, Launch&& launch) {
  if (p.slice_rows > 0) return dispatch_persistent_backward_2d(p, launch);
  const LaunchConfig c{(unsigned)ceil_div(p.hidden, p.units), 1, PersistentTile::kThreads,
                       PersistentTile::backward_elems(p.hidden, p.units, p.batch) *
                           sizeof(acc_t<T>),
                       true};
  launch(c, BackwardPersistentKernel<T>{}, p);
}

// The fewest blocks any Tensor Core 2-D instance of T keeps resident, by
// `blocks(tag)`: the plan's capacity query holds for every pass size.
template <typename T, typename Blocks>
int tensor_core_capacity(Blocks&& blocks, bool backward) {
  using Tile = Persistent2dTensorCoreTile;
  int most = 0;
  if (backward) {
    most = blocks(BackwardPersistent2dTensorCoreKernel<T, Tile::kRows>{});
    if constexpr (kHasTensorCoreKernels<T>) {
      most = std::min(most, blocks(BackwardPersistent2dTensorCoreKernel<T, Tile::kSmallRows>{}));
    }
    return most;
  }
  most = std::min(blocks(ForwardPersistent2dTensorCoreKernel<T, Tile::kRows, true>{}),
                  blocks(ForwardPersistent2dTensorCoreKernel<T, Tile::kRows, false>{}));
  if constexpr (kHasTensorCoreKernels<T>) {
    most = std::min({most, blocks(ForwardPersistent2dTensorCoreKernel<T, Tile::kSmallRows, true>{}),
                     blocks(ForwardPersistent2dTensorCoreKernel<T, Tile::kSmallRows, false>{})});
  }
  return most;
}

// x: [n] -> sigmoid(x), tanh(x) as the kernels compute them (a test hook).
template <typename T, typename Launch>
void dispatch_gate_activations(const T* x, T* sig, T* tanh, int64_t n, Launch&& launch) {
  constexpr unsigned kThreads = 256;
  const LaunchConfig c{(unsigned)((n + kThreads - 1) / kThreads), 1, kThreads, 0, false};
  launch(c, GateActivationsKernel<T>{}, x, sig, tanh, n);
}

// Calls visit(tag) for every instance the dispatchers above can hand out for
// storage type T (some more than once): what an executor must have compiled.
template <typename T, typename Visit>
void for_each_kernel_instance(Visit&& visit) {
  const auto record = [&](const LaunchConfig&, auto tag, const auto&...) { visit(tag); };
  ForwardStepParams<T> fs{};
  BackwardStepParams<T> bs{};
  PersistentForwardParams<T> fp{};
  PersistentBackwardParams<T> bp{};
  fs.rows = fs.hidden = fs.proj = bs.rows = bs.hidden = bs.proj = 16;
  fp.batch = fp.hidden = fp.units = bp.batch = bp.hidden = bp.units = 16;
  for (StepVariant v : {StepVariant::kNarrow, StepVariant::kWide, StepVariant::kTensorCore}) {
    for (bool save : {false, true}) dispatch_forward_step(fs, v, save, record);
    dispatch_backward_step(bs, v, record);
  }
  for (bool save : {false, true}) dispatch_persistent_forward(fp, save, record);
  dispatch_persistent_backward(bp, record);
  for (int slice_rows : {1, 64}) {  // one row per thread, and four
    fp.slice_rows = bp.slice_rows = slice_rows;
    for (bool tensor_cores : {false, true}) {
      fp.tensor_cores = bp.tensor_cores = tensor_cores;
      for (bool save : {false, true}) dispatch_persistent_forward(fp, save, record);
      dispatch_persistent_backward(bp, record);
    }
  }
  dispatch_gate_activations<T>(nullptr, nullptr, nullptr, 1, record);
}

}  // namespace fastlstm
