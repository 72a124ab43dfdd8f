// The CPU engine's kernels for x86-64 with AVX2 and FMA: the engine's
// templates compiled under target("avx2,fma") with 32-byte vectors (8
// floats, 4 doubles). Every header not of the engine is included before the
// target pragma, so that only the engine's own code (in namespace avx2) is
// built for AVX2; the tables are constant-initialized, and avx2_engine,
// outside the pragma, hands them out only where the CPU has both
// instruction sets.
#include "../engine.h"

#if FASTLSTM_CPU_X86_ENGINES

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__linux__)
#include <unistd.h>
#endif

#include "team.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define FASTLSTM_CPU_ISA avx2
#define FASTLSTM_CPU_AVX2 1  // vec.h: FMA and horizontal sums by intrinsics
#include "engine_impl.h"

namespace fastlstm::cpu::avx2 {
constexpr Engine<float> kFloatEngine = engine_of<Vec<float, 8>>("avx2");
constexpr Engine<double> kDoubleEngine = engine_of<Vec<double, 4>>("avx2");
}  // namespace fastlstm::cpu::avx2
#pragma GCC pop_options

namespace fastlstm::cpu {
namespace {
bool avx2_supported() {
  static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return supported;
}
}  // namespace
template <>
const Engine<float>* avx2_engine<float>() {
  return avx2_supported() ? &avx2::kFloatEngine : nullptr;
}
template <>
const Engine<double>* avx2_engine<double>() {
  return avx2_supported() ? &avx2::kDoubleEngine : nullptr;
}
}  // namespace fastlstm::cpu

#endif  // elsewhere engine_generic.cpp defines it as null
