// The CPU engine: the products, recurrences and elementwise passes of the CPU
// backend, torch-free, compiled once per instruction set from one source
// (csrc/cpu/engine/) and chosen at run time (cpu_engine<T>()). The torch
// glue (lstm_cpu.cpp) owns the buffers and calls these.
//
// Shapes follow the ops: N rows of all steps, B rows of the widest step,
// I input size, H hidden size, P width of h (H without projection).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "../step_schedule.h"

namespace fastlstm::cpu {

// A matrix as the engine reads it: row i at rows[i] when rows is set (rows
// gathered from several places), else at data + i * ld.
template <typename T>
struct Matrix {
  const T* data = nullptr;
  int64_t ld = 0;
  const T* const* rows = nullptr;
};

// C[M, N] (+)= A . B. A [M, K] is `a` (rows at one stride) or, with
// a_transposed, aᵀ for a [K, M]. B [K, N] is `b` (row k of B is b's row k)
// or, with b_transposed, bᵀ for b [N, K]: a weight as it lies.
template <typename T>
struct GemmNN {
  int64_t m, n, k;
  Matrix<T> a;
  bool a_transposed;
  Matrix<T> b;
  bool b_transposed;
  T* c;
  int64_t ldc;
  bool accumulate;  // C += A . B, else C = A . B
  // B already packed (pack_panels, groups of one panel), read there instead
  // of `b`: for a B that several products share.
  const T* b_panels = nullptr;
};

// C[M, N] (+)= A . Wᵀ for A [M, K] and a weight W [N, K] as it lies.
template <typename T>
struct GemmNT {
  int64_t m, n, k;
  Matrix<T> a;
  Matrix<T> w;
  T* c;
  int64_t ldc;
  bool accumulate;
};

// Visited steps [k_begin, k_end) of the forward recurrence. With
// input_panels the steps compute the input projection themselves, from the
// input rows; without, gates holds rows [gates_row0, ...) with x W_ihᵀ of
// those steps. With keep_gates the gates rows get the activated gates.
// c_state is advanced in place; with keep_cells, cells gets c_t of every row.
// h_{t-1} comes from output (the previous step's rows) or h0.
template <typename T>
struct ForwardSteps {
  const StepSchedule* sched;
  bool reverse;
  int64_t k_begin, k_end;
  int64_t hidden, proj;
  int panel_group;       // panels_per_group(B) the panels below were packed with
  const T* input_panels; // pack_gate_panels(w_ih), or null
  const T* input;        // [N, I]: with input_panels
  int64_t input_size;    // I
  const T* gate_panels;  // pack_gate_panels(w_hh)
  const T* proj_panels;  // pack_panels(w_hr [P, H], transposed): projection only
  const T* bias;         // [4H]
  const T* h0;           // [B, P]
  T* gates;              // rows [gates_row0, ...) of [N, 4H]
  int64_t gates_row0;
  bool keep_gates;
  T* c_state;            // [B, H]
  T* cells;              // [N, H] when keep_cells
  bool keep_cells;
  T* hidden_rows;        // [B, H] scratch: projection only
  T* output;             // [N, P]
};

// Visited steps [k_begin, k_end) of the backward recurrence, from the last
// down. dh_state [B, P] holds dL/dh reaching the latest visited step's output
// from later steps (dL/dh_n at first) and ends with it for the step before
// k_begin (dL/dh0 at the end); dc_state [B, H] likewise for c. dgates gets the
// gate gradients of the chunk's rows [dgates_row0, ...); with a projection,
// dh_total gets dL/dh_t (output gradient plus recurrent) of those rows.
template <typename T>
struct BackwardSteps {
  const StepSchedule* sched;
  bool reverse;
  int64_t k_begin, k_end;
  int64_t hidden, proj;
  int panel_group;       // panels_per_group(B) the panels below were packed with
  const T* hh_panels;    // pack_panels(w_hh [4H, P])
  const T* hr_panels;    // pack_panels(w_hr [P, H]): projection only
  const T* gates;        // [N, 4H] activated gates
  const T* cells;        // [N, H]
  const T* c0;           // [B, H]
  const T* grad_output;  // row r at grad_output + r * grad_output_ld ([N, P]; ld 0: one row)
  int64_t grad_output_ld;
  T* dh_state;           // [B, P]
  T* dc_state;           // [B, H]
  T* dgates;             // rows [dgates_row0, ...) of [N, 4H]
  int64_t dgates_row0;
  T* dh_total;           // rows [dgates_row0, ...) of [N, P]: projection only
};

// One step for every row at once (a single-step layer, an LSTMCell):
// gates = x W_ihᵀ + h_prev W_hhᵀ (gemm_nt's dot products on the weights as
// they lie for a few rows, W [x | h_prev]ᵀ by the register tile for many),
// then the cell, each member of the team on the gate columns of its own
// hidden units, so that the whole step is one fork. c may be c_prev
// (updated in place).
template <typename T>
struct CellRows {
  int64_t rows, hidden, input, proj;  // B, H, I, P
  Matrix<T> x;       // [B, I]
  Matrix<T> h_prev;  // [B, P]
  Matrix<T> w_ih;    // [4H, I]
  Matrix<T> w_hh;    // [4H, P]
  const T* bias;     // [4H]
  T* gates;          // [B, 4H]: the activated gates
  const T* c_prev;   // [B, H]
  T* c;              // [B, H]
  T* h;              // [B, H]
};

template <typename T>
struct CellGradRows {
  int64_t rows, hidden;
  const T* gates;   // [B, 4H] activated
  const T* c;       // [B, H]
  const T* c_prev;  // [B, H]
  const T* dh;      // [B, H] dL/dh_t
  const T* dc;      // [B, H] dL/dc_t from later steps
  T* dgates;        // [B, 4H]
  T* dc_prev;       // [B, H]
};

// The engine for one storage type. `threads` is the most threads a call may
// use (1 inside another parallel region); no result depends on it.
template <typename T>
struct Engine {
  const char* isa;  // "avx512", "avx2" or "generic"
  void (*gemm_nn)(const GemmNN<T>&, int threads);
  void (*gemm_nt)(const GemmNT<T>&, int threads);
  // The recurrences' right operands, packed once per call in groups of
  // panels_per_group(B) panels (a layout chosen by the batch B).
  int (*panels_per_group)(int64_t batch);
  // Whether the forward recurrence takes the input projection itself
  // (ForwardSteps::input_panels) at batch B, for W_ih and W_hh of
  // weight_bytes together.
  bool (*projects_input_in_steps)(int64_t batch, int64_t weight_bytes);
  // W_hh [4H, P] (or W_ih [4H, I]) as the forward recurrence reads it.
  size_t (*gate_panels_size)(int64_t hidden, int64_t k, int group);
  void (*pack_gate_panels)(const T* w, int64_t hidden, int64_t k, int group, T* out,
                           int threads);
  // B [K, N] as panels of full K: B row-major (ld), or with transposed
  // B = Wᵀ for W [N, K] row-major (ld).
  size_t (*panels_size)(int64_t k, int64_t n, int group);
  void (*pack_panels)(Matrix<T> b, int64_t k, int64_t n, bool transposed, int group, T* out,
                      int threads);
  void (*forward_steps)(const ForwardSteps<T>&, int threads);
  void (*backward_steps)(const BackwardSteps<T>&, int threads);
  void (*cell_rows)(const CellRows<T>&, int threads);
  void (*cell_grad_rows)(const CellGradRows<T>&, int threads);
  // h = o * tanh(c) for rows of saved gates [rows, 4H] and cells [rows, H].
  void (*hidden_rows)(int64_t rows, int64_t hidden, const T* gates, const T* cells, T* h);
  // sums[j] += sum over rows of x[r * ld + j], rows in order, in double.
  void (*add_column_sums)(int64_t rows, int64_t cols, const T* x, int64_t ld, double* sums,
                          int threads);
  // sigmoid and tanh of n values exactly as the passes above compute them.
  void (*activations)(int64_t n, const T* x, T* sigmoid_x, T* tanh_x);
  // The machine's ceilings, for the benchmark (probes.h): FMA chains on
  // full vectors (returns the FLOPs done), and reads of n values `passes`
  // times, every other pass backwards (returns the bytes read).
  double (*fma_probe)(int64_t iterations);
  double (*read_probe)(const T* data, int64_t n, int64_t passes);
};

// The engine of the running CPU, for float and for double alike: AVX-512
// kernels where the CPU has them (x86-64 built with GCC), else AVX2+FMA
// ones, else the generic ones; FASTLSTM_CPU_ISA=avx2 or =generic caps the
// choice there.
template <typename T>
const Engine<T>& cpu_engine();
template <>
const Engine<float>& cpu_engine<float>();
template <>
const Engine<double>& cpu_engine<double>();

// The engines' instruction set: "avx512", "avx2" or "generic" (the same
// for both storage types).
std::string cpu_engine_name();

// Whether the x86 engines (AVX-512, AVX2) are built: GCC on x86-64.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FASTLSTM_CPU_X86_ENGINES 1
#else
#define FASTLSTM_CPU_X86_ENGINES 0
#endif

// Each instruction set's engine (T: float or double), for cpu_engine; null
// where not built or not supported by the CPU.
template <typename T>
const Engine<T>* avx512_engine();
template <typename T>
const Engine<T>* avx2_engine();
template <typename T>
const Engine<T>& generic_engine();
template <>
const Engine<float>* avx512_engine<float>();
template <>
const Engine<double>* avx512_engine<double>();
template <>
const Engine<float>* avx2_engine<float>();
template <>
const Engine<double>* avx2_engine<double>();
template <>
const Engine<float>& generic_engine<float>();
template <>
const Engine<double>& generic_engine<double>();

}  // namespace fastlstm::cpu
