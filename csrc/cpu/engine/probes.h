// Probes of the machine's ceilings, compiled per instruction set like the
// rest of the engine, for the benchmark's bound column (fastlstm/bench/
// bounds.py): the rate of this instruction set's fused multiply-adds, and
// the rate at which one core reads a buffer from its caches or memory, as a
// recurrence reads its weights every step.
#pragma once

#include <cstdint>

#include "tile.h"
#include "vec.h"

namespace fastlstm::cpu::FASTLSTM_CPU_ISA {

// Independent chains of fused multiply-adds on full vectors, enough of
// them to fill both FMA ports through the instruction's latency, in the
// registers the register tile has. Returns the floating-point operations
// done (2 per lane per FMA).
template <typename V>
double fma_probe(int64_t iterations) {
  using T = typename V::Scalar;
  constexpr int kChains = Tile<V>::kRegisters == 32 ? 24 : 12;
  V acc[kChains];
#pragma GCC unroll 24
  for (int i = 0; i < kChains; ++i) acc[i] = V(T(i));
  const V a(T(0.999999)), b(T(1e-7));
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < kChains; ++i) acc[i] = fma(acc[i], a, b);
  }
  V sum(T(0));
  for (int i = 0; i < kChains; ++i) sum = sum + acc[i];
  // The sums must look used, or the loop would go.
  volatile T sink = sum_lanes(sum);
  (void)sink;
  return 2.0 * V::kWidth * kChains * static_cast<double>(iterations);
}

// Reads n values `passes` times, every other pass backwards (as the
// recurrences walk their weights), with eight independent sums. Returns
// the bytes read.
template <typename V>
double read_probe(const typename V::Scalar* data, int64_t n, int64_t passes) {
  using T = typename V::Scalar;
  constexpr int W = V::kWidth, kSums = 8;
  const int64_t blocks = n / (W * kSums);
  V acc[kSums];
  for (int i = 0; i < kSums; ++i) acc[i] = V(T(0));
  for (int64_t pass = 0; pass < passes; ++pass) {
    for (int64_t j = 0; j < blocks; ++j) {
      const int64_t block = pass % 2 == 0 ? j : blocks - 1 - j;
      const T* p = data + block * W * kSums;
#pragma GCC unroll 8
      for (int i = 0; i < kSums; ++i) acc[i] = acc[i] + V::load(p + i * W);
    }
  }
  V sum(T(0));
  for (int i = 0; i < kSums; ++i) sum = sum + acc[i];
  volatile T sink = sum_lanes(sum);
  (void)sink;
  return static_cast<double>(blocks * W * kSums) * sizeof(T) * static_cast<double>(passes);
}

}  // namespace fastlstm::cpu::FASTLSTM_CPU_ISA
