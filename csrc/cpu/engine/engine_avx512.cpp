// The CPU engine's kernels for x86-64 with AVX-512 (F, DQ, VL, BW): the
// engine's templates compiled under target("avx512f,...") with 64-byte
// vectors (16 floats, 8 doubles), so that a register tile's row is one cache
// line and the 32 vector registers hold it. Built as engine_avx2.cpp is:
// headers not of the engine before the pragma, the tables constant-
// initialized, handed out by avx512_engine only where the CPU has every one
// of the sets.
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
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")
#define FASTLSTM_CPU_ISA avx512
#define FASTLSTM_CPU_AVX512 1  // vec.h: FMA and horizontal sums by intrinsics
#define FASTLSTM_CPU_AVX2 1
#include "engine_impl.h"

namespace fastlstm::cpu::avx512 {
constexpr Engine<float> kFloatEngine = engine_of<Vec<float, 16>>("avx512");
constexpr Engine<double> kDoubleEngine = engine_of<Vec<double, 8>>("avx512");
}  // namespace fastlstm::cpu::avx512
#pragma GCC pop_options

namespace fastlstm::cpu {
namespace {
bool avx512_supported() {
  static const bool supported =
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
  return supported;
}
}  // namespace
template <>
const Engine<float>* avx512_engine<float>() {
  return avx512_supported() ? &avx512::kFloatEngine : nullptr;
}
template <>
const Engine<double>* avx512_engine<double>() {
  return avx512_supported() ? &avx512::kDoubleEngine : nullptr;
}
}  // namespace fastlstm::cpu

#endif  // elsewhere engine_generic.cpp defines it as null
