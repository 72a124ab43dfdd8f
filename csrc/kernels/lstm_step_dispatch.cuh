// Picks the compiled instance of a step or persistent kernel for a variant and hands it,
// with its grid and block, to `launch`: the CUDA library passes a <<<>>>
// launch on its stream, the emulator its own launcher. One place maps
// variants to instances, so emulated runs exercise the GPU's configurations.
#pragma once

#include "lstm_persistent_backward.cuh"
#include "lstm_persistent_forward.cuh"
#include "lstm_persistent_tensor_core.cuh"
#include "lstm_step_backward.cuh"
#include "lstm_step_forward.cuh"
#include "lstm_step_tensor_core.cuh"
#include "static_switch.h"

#include <type_traits>

namespace fastlstm {

template <typename T>
constexpr bool kHasTensorCoreKernels =
    std::is_same<T, half_t>::value || std::is_same<T, bfloat16_t>::value;


template <typename T, StepVariant kVariant, typename Launch>
void launch_forward_step(const ForwardStepParams<T>& p, bool save, Launch&& launch) {
  constexpr int kRows = ForwardTile::rows_per_thread(kVariant);
  const dim3 grid(ForwardTile::blocks_x(p.hidden), ForwardTile::blocks_y(p.rows, kVariant));
  BOOL_SWITCH(save, kSave, [&] {
    launch(grid, dim3(ForwardTile::kThreads), &lstm_forward_step<T, kRows, kSave>, p);
  });
}

template <typename T, typename Launch>
void dispatch_forward_step(const ForwardStepParams<T>& p, StepVariant variant, bool save,
                           Launch&& launch) {
  if constexpr (kHasTensorCoreKernels<T>) {
    if (variant == StepVariant::kTensorCore) {
      constexpr int kTile = TensorCoreTile::kTile;
      const dim3 grid(ceil_div(p.hidden, kTile), ceil_div(p.rows, kTile));
      BOOL_SWITCH(save, kSave, [&] {
        launch(grid, dim3(TensorCoreTile::kThreads), &lstm_forward_step_tensor_core<T, kSave>, p);
      });
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
  const dim3 grid(BackwardTile::blocks_x(p.proj), BackwardTile::blocks_y(p.rows, kVariant));
  launch(grid, dim3(BackwardTile::kThreads), &lstm_backward_step<T, kRows>, p);
}

template <typename T, typename Launch>
void dispatch_backward_step(const BackwardStepParams<T>& p, StepVariant variant,
                            Launch&& launch) {
  if constexpr (kHasTensorCoreKernels<T>) {
    if (variant == StepVariant::kTensorCore) {
      const dim3 grid(ceil_div(p.proj, TensorCoreTile::kCols), ceil_div(p.rows, TensorCoreTile::kTile));
      launch(grid, dim3(TensorCoreTile::kThreads), &lstm_backward_step_tensor_core<T>, p);
      return;
    }
  }
  if (variant == StepVariant::kWide) {
    launch_backward_step<T, StepVariant::kWide>(p, launch);
  } else {
    launch_backward_step<T, StepVariant::kNarrow>(p, launch);
  }
}

// Persistent kernels: `launch` is a cooperative launch that also takes the
// dynamic shared memory size.
template <typename T, typename Launch>
void dispatch_persistent_forward(const PersistentForwardParams<T>& p, bool save,
                                 Launch&& launch) {
  const dim3 grid(ceil_div(p.hidden, p.units));
  if constexpr (kHasTensorCoreKernels<T>) {
    if (p.tensor_cores) {
      const size_t shared = PersistentTile::tensor_core_forward_bytes(p.hidden, p.units, p.batch);
      BOOL_SWITCH(save, kSave, [&] {
        launch(grid, dim3(PersistentTile::kThreads), shared,
               &lstm_forward_persistent_tensor_core<T, kSave>, p);
      });
      return;
    }
  }
  const size_t shared = PersistentTile::forward_elems(p.hidden, p.units, p.batch) * sizeof(acc_t<T>);
  BOOL_SWITCH(save, kSave, [&] {
    launch(grid, dim3(PersistentTile::kThreads), shared, &lstm_forward_persistent<T, kSave>, p);
  });
}

template <typename T, typename Launch>
void dispatch_persistent_backward(const PersistentBackwardParams<T>& p, Launch&& launch) {
  if constexpr (kHasTensorCoreKernels<T>) {
    if (p.tensor_cores) {
      launch(dim3(ceil_div(p.hidden, p.units)), dim3(PersistentTile::kThreads),
             PersistentTile::tensor_core_backward_bytes(p.hidden, p.units, p.batch),
             &lstm_backward_persistent_tensor_core<T>, p);
      return;
    }
  }
  const size_t shared = PersistentTile::backward_elems(p.hidden, p.units, p.batch) * sizeof(acc_t<T>);
  launch(dim3(ceil_div(p.hidden, p.units)), dim3(PersistentTile::kThreads), shared,
         &lstm_backward_persistent<T>, p);
}

}  // namespace fastlstm
