// Every kernel template, for a translation unit that instantiates them
// (the NVRTC program; nvcc and the emulator take them through
// kernel_entries.cuh).
#pragma once

#include "gate_activations.cuh"
#include "lstm_persistent2d.cuh"
#include "lstm_persistent_backward.cuh"
#include "lstm_persistent_forward.cuh"
#include "lstm_persistent2d_tensor_core.cuh"
#include "lstm_step_backward.cuh"
#include "lstm_step_forward.cuh"
#include "lstm_step_tensor_core.cuh"
