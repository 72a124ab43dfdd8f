// The CPU engine for any CPU: the engine's templates with 16-byte vectors
// (SSE2 on x86-64, NEON on ARM), for float where AVX2 is missing and for
// double everywhere; and cpu_engine, which picks the engine at run time:
// the widest the CPU has, at most the one FASTLSTM_CPU_ISA names (avx512,
// avx2 or generic).
#include <cstdlib>
#include <cstring>

#define FASTLSTM_CPU_ISA generic
#include "engine_impl.h"

namespace fastlstm::cpu {
namespace {

constexpr Engine<float> kGenericFloat = generic::engine_of<generic::Vec<float, 4>>("generic");
constexpr Engine<double> kGenericDouble = generic::engine_of<generic::Vec<double, 2>>("generic");

// The float engines from the widest: null where not built or not supported.
const Engine<float>* float_engine_at(int rank) {
  switch (rank) {
    case 0: return avx512_float_engine();
    case 1: return avx2_float_engine();
    default: return &kGenericFloat;
  }
}

int widest_allowed_rank() {
  const char* isa = std::getenv("FASTLSTM_CPU_ISA");
  if (isa == nullptr) return 0;
  if (std::strcmp(isa, "avx2") == 0) return 1;
  if (std::strcmp(isa, "generic") == 0) return 2;
  return 0;
}

}  // namespace

#if !FASTLSTM_CPU_X86_ENGINES
const Engine<float>* avx512_float_engine() { return nullptr; }
const Engine<float>* avx2_float_engine() { return nullptr; }
#endif

const Engine<float>& generic_float_engine() { return kGenericFloat; }
const Engine<double>& generic_double_engine() { return kGenericDouble; }

template <>
const Engine<float>& cpu_engine<float>() {
  static const Engine<float>* engine = [] {
    int rank = widest_allowed_rank();
    while (float_engine_at(rank) == nullptr) ++rank;
    return float_engine_at(rank);
  }();
  return *engine;
}

template <>
const Engine<double>& cpu_engine<double>() {
  return kGenericDouble;
}

std::string cpu_engine_name() { return cpu_engine<float>().isa; }

}  // namespace fastlstm::cpu
