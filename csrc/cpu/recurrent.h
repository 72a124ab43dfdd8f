// Persistent recurrence of the CPU backend (float32, no projection): one
// parallel region for a whole run of steps instead of a thread fork and join
// per GEMM and per elementwise pass. Each thread owns a fixed slice of hidden
// units, keeps its slice of W_hh (packed once per call) hot in its own cache,
// computes the recurrent product of its units for every row of the step, runs
// the fused cell update on them while they are in L1, and meets the others at
// one barrier per step.
//
// Deterministic at any thread count: every output element is one sum over k
// in increasing order (one FMA chain, starting from zero), whichever thread
// owns it and however rows are blocked.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "../lstm_args.h"

namespace fastlstm::cpu {

// Hidden units per forward panel (all four gates of them: 4 * 16 columns),
// and columns of dL/dh_{t-1} per backward panel.
constexpr int64_t kPanelUnits = 16;
constexpr int64_t kPanelCols = 64;

// Whether the persistent loops may run here: float32 without projection, a
// CPU with AVX-512 (the micro-kernel's instruction set), and not turned off
// with FASTLSTM_CPU_PERSISTENT=0 (for comparisons; =1 forces it on for every
// eligible shape). The choice depends on the shape only, never on the thread
// count, so results stay bitwise the same at any thread count.
bool use_persistent_forward(const LayerShape& s, at::ScalarType dtype, bool projected);
bool use_persistent_backward(const LayerShape& s, at::ScalarType dtype, bool projected);

// W_hh [4H, H] as forward panels [H/16 (rounded up), H, 4, 16]: panel p holds,
// for each k, the weights of units [16p, 16p + 16) of gates i, f, g, o
// (zero past H).
at::Tensor pack_gate_panels(const at::Tensor& w_hh);

// W_hh [4H, H] as backward panels [H/64 (rounded up), 4H, 64]: panel q holds
// columns [64q, 64q + 64) of every row (zero past H).
at::Tensor pack_column_panels(const at::Tensor& w_hh);

// Steps [k_begin, k_end) of the forward recurrence. gates holds rows
// [gates_row0, ...) with the input projection (x W_ihᵀ) of those steps; they
// are replaced by the activated gates. c_state [B, H] is advanced in place;
// cells gets c_t of every row [N, H] when cells_saved, else is [B, H] scratch. output [N, H]
// gets h_t; h_{t-1} is read from output (previous step) or h0.
struct PersistentForward {
  const StepSchedule* sched;
  bool reverse;
  int64_t hidden;
  const float* gate_panels;  // pack_gate_panels(w_hh)
  const float* bias;         // [4H]
  const float* h0;           // [B, H]
  float* gates;              // rows [gates_row0, ...) of [N, 4H]
  int64_t gates_row0;
  float* c_state;            // [B, H]
  float* cells;              // [N, H], or [B, H] scratch in inference
  bool cells_saved;
  float* output;             // [N, H]
};
void persistent_forward_steps(const PersistentForward& args, int64_t k_begin, int64_t k_end);

// Every step of the backward recurrence, from the last visited to the first.
// dh_state [B, H] holds dL/dh_n in, dL/dh0 out; dc_state likewise for c.
// dgates [N, 4H] gets the gate gradients of every row.
struct PersistentBackward {
  const StepSchedule* sched;
  bool reverse;
  int64_t hidden;
  const float* column_panels;  // pack_column_panels(w_hh)
  const float* gates;          // [N, 4H] activated gates
  const float* cells;          // [N, H]
  const float* c0;             // [B, H]
  const float* grad_output;    // [N, H]
  float* dh_state;             // [B, H]
  float* dc_state;             // [B, H]
  float* dgates;               // [N, 4H]
};
void persistent_backward_steps(const PersistentBackward& args);

}  // namespace fastlstm::cpu
