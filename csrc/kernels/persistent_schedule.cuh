// The step schedule as the persistent kernels walk it: the same visiting
// order, previous step and carried rows as the host's StepSchedule
// (csrc/lstm_args.h), read from device arrays.
#pragma once

#include "kernel_prelude.cuh"

#include "step_params.h"

namespace fastlstm {

struct ScheduledStep {
  int rows;     // rows of the step
  int offset;   // its first row
  int prev;     // offset of the step it continues from, or -1
  int carried;  // leading rows that continue from it (the rest start from h0/c0)
};

__device__ __forceinline__ ScheduledStep scheduled_step(const DeviceSchedule& s, int k) {
  const int t = s.reverse ? s.steps - 1 - k : k;
  const int p = s.reverse ? t + 1 : t - 1;
  ScheduledStep step;
  const bool full = s.batch == nullptr;
  step.rows = full ? s.full_rows : s.batch[t];
  step.offset = full ? t * s.full_rows : s.offset[t];
  const bool has_prev = p >= 0 && p < s.steps;
  step.prev = !has_prev ? -1 : full ? p * s.full_rows : s.offset[p];
  step.carried = !has_prev ? 0 : full ? step.rows : min(step.rows, s.batch[p]);
  return step;
}

}  // namespace fastlstm
