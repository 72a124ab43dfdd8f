// The CPU engine for any CPU: the engine's templates with 16-byte vectors
// (SSE2 on x86-64, NEON on ARM), for float where AVX2 is missing and for
// double everywhere; and cpu_engine, which picks the engine at run time.
#include <cstdlib>
#include <cstring>

#define FASTLSTM_CPU_ISA generic
#include "engine_impl.h"

namespace fastlstm::cpu {
namespace {

constexpr Engine<float> kGenericFloat = generic::engine_of<generic::Vec<float, 4>>("generic");
constexpr Engine<double> kGenericDouble = generic::engine_of<generic::Vec<double, 2>>("generic");

bool generic_forced() {
  const char* isa = std::getenv("FASTLSTM_CPU_ISA");
  return isa != nullptr && std::strcmp(isa, "generic") == 0;
}

}  // namespace

const Engine<float>& generic_float_engine() { return kGenericFloat; }
const Engine<double>& generic_double_engine() { return kGenericDouble; }

template <>
const Engine<float>& cpu_engine<float>() {
  static const Engine<float>* engine = [] {
    const Engine<float>* avx2 = avx2_float_engine();
    return avx2 != nullptr && !generic_forced() ? avx2 : &kGenericFloat;
  }();
  return *engine;
}

template <>
const Engine<double>& cpu_engine<double>() {
  return kGenericDouble;
}

std::string cpu_engine_name() { return cpu_engine<float>().isa; }

}  // namespace fastlstm::cpu
