// The step schedule of one layer direction: which rows each step owns and in
// which order the recurrence visits them. Torch-free, so that the CPU engine
// (csrc/cpu/engine/) and the torch glue share it.
#pragma once

#include <cstdint>
#include <vector>

namespace fastlstm {

// Which rows each step owns, in the order the recurrence visits them.
struct StepSchedule {
  std::vector<int64_t> batch;   // rows of step t
  std::vector<int64_t> offset;  // first row of step t
  int64_t steps() const { return static_cast<int64_t>(batch.size()); }
  // Whether every step has all B rows (no packing): step t then starts at row t * B.
  bool full() const {
    for (int64_t rows : batch) {
      if (rows != batch.front()) return false;
    }
    return true;
  }
  // Row of the state (h_{t-1}, c_{t-1}) that row b of step t continues from,
  // or -1 when it starts from h0/c0.
  int64_t prev_row(int64_t t, int64_t b, bool reverse) const;
  // Step visited k-th by the recurrence.
  int64_t step_at(int64_t k, bool reverse) const { return reverse ? steps() - 1 - k : k; }
  // Step the rows of step t continue from, or -1 at the first visited step.
  int64_t prev_step(int64_t t, bool reverse) const;
  // Leading rows of step t that continue from prev_step (the rest start from h0/c0).
  int64_t carried_rows(int64_t t, bool reverse) const;
  // Row holding each sequence's last visited step: [B], for h_n.
  std::vector<int64_t> last_rows(bool reverse) const;
};

// With every step full (StepSchedule::full), the rows of h_{t-1}: the B rows
// of the first visited step start from h0 (at row from_h0); the other N - B
// rows, from row continuing on, continue from a block of the output that
// starts at row source. Forward: [B, N) from [0, N - B); reverse: [0, N - B)
// from [B, N). Products with h_{t-1} read the output in place.
struct FullStepRows {
  int64_t from_h0, continuing, source, carried;
};
inline FullStepRows full_step_rows(int64_t rows, int64_t batch, bool reverse) {
  const int64_t carried = rows - batch;
  return reverse ? FullStepRows{carried, 0, batch, carried} : FullStepRows{0, batch, 0, carried};
}

// Consecutive visited steps [k_begin, k_end) whose rows [row0, row0 + rows)
// get their input projection in one GEMM: all steps when the workspace is
// kept, else about chunk_rows rows at a time so the gate buffer stays small.
// Inference projects this many rows of input at a time: enough for an
// efficient GEMM, small enough that the gate buffer stays in cache.
constexpr int64_t kInferenceChunkRows = 512;

struct StepChunk {
  int64_t k_begin, k_end, row0, rows;
};
std::vector<StepChunk> step_chunks(const StepSchedule& sched, bool reverse, int64_t chunk_rows);

}  // namespace fastlstm
