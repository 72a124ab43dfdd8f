#include "step_schedule.h"

#include <algorithm>

namespace fastlstm {

int64_t StepSchedule::prev_row(int64_t t, int64_t b, bool reverse) const {
  const int64_t prev = reverse ? t + 1 : t - 1;
  if (prev < 0 || prev >= steps() || b >= batch[prev]) return -1;
  return offset[prev] + b;
}

int64_t StepSchedule::prev_step(int64_t t, bool reverse) const {
  const int64_t prev = reverse ? t + 1 : t - 1;
  return prev < 0 || prev >= steps() ? -1 : prev;
}

int64_t StepSchedule::carried_rows(int64_t t, bool reverse) const {
  const int64_t prev = prev_step(t, reverse);
  return prev < 0 ? 0 : std::min(batch[t], batch[prev]);
}

std::vector<int64_t> StepSchedule::last_rows(bool reverse) const {
  std::vector<int64_t> rows(steps() ? batch[0] : 0);
  for (int64_t k = 0; k < steps(); ++k) {
    const int64_t t = step_at(k, reverse);
    for (int64_t b = 0; b < batch[t]; ++b) rows[b] = offset[t] + b;
  }
  return rows;
}

std::vector<StepChunk> step_chunks(const StepSchedule& sched, bool reverse, int64_t chunk_rows) {
  const int64_t steps = sched.steps();
  const int64_t widest = steps ? sched.batch[0] : 0;
  const int64_t per_chunk = std::max<int64_t>(1, chunk_rows / std::max<int64_t>(1, widest));
  std::vector<StepChunk> chunks;
  for (int64_t k0 = 0; k0 < steps; k0 += per_chunk) {
    const int64_t k1 = std::min(steps, k0 + per_chunk);
    const int64_t t_a = sched.step_at(k0, reverse), t_b = sched.step_at(k1 - 1, reverse);
    const int64_t t_lo = std::min(t_a, t_b), t_hi = std::max(t_a, t_b);
    const int64_t row0 = sched.offset[t_lo];
    chunks.push_back({k0, k1, row0, sched.offset[t_hi] + sched.batch[t_hi] - row0});
  }
  return chunks;
}

}  // namespace fastlstm
