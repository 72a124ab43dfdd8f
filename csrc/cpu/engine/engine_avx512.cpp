// The CPU engine's float kernels for x86-64 with AVX-512 (F, DQ, VL, BW):
// the engine's templates compiled under target("avx512f,...") with
// 16-float vectors, so that a register tile's row is one cache line and the
// 32 vector registers hold it. Built as engine_avx2.cpp is: headers not of
// the engine before the pragma, the table constant-initialized, handed out
// by avx512_float_engine only where the CPU has every one of the sets.
#include "../engine.h"

#if FASTLSTM_CPU_X86_ENGINES

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
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
namespace {
constexpr Engine<float> kFloatEngine = engine_of<Vec<float, 16>>("avx512");
}  // namespace
const Engine<float>* float_engine() { return &kFloatEngine; }
}  // namespace fastlstm::cpu::avx512
#pragma GCC pop_options

namespace fastlstm::cpu {
const Engine<float>* avx512_float_engine() {
  static const bool supported =
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
  return supported ? avx512::float_engine() : nullptr;
}
}  // namespace fastlstm::cpu

#endif  // elsewhere engine_generic.cpp defines it as null
