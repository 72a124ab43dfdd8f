// The CPU engine for any CPU: the engine's templates with 16-byte vectors
// (SSE2 on x86-64, NEON on ARM), for float and double where AVX2 is missing;
// and cpu_engine, which picks the engine at run time: the widest the CPU
// has, at most the one FASTLSTM_CPU_ISA names (avx512, avx2 or generic).
#include <cstdlib>
#include <cstring>

#define FASTLSTM_CPU_ISA generic
#include "engine_impl.h"

namespace fastlstm::cpu {
namespace {

constexpr Engine<float> kGenericFloat = generic::engine_of<generic::Vec<float, 4>>("generic");
constexpr Engine<double> kGenericDouble = generic::engine_of<generic::Vec<double, 2>>("generic");

// The engines from the widest: null where not built or not supported.
template <typename T>
const Engine<T>* engine_at(int rank) {
  switch (rank) {
    case 0: return avx512_engine<T>();
    case 1: return avx2_engine<T>();
    default: return &generic_engine<T>();
  }
}

int widest_allowed_rank() {
  const char* isa = std::getenv("FASTLSTM_CPU_ISA");
  if (isa == nullptr) return 0;
  if (std::strcmp(isa, "avx2") == 0) return 1;
  if (std::strcmp(isa, "generic") == 0) return 2;
  return 0;
}

template <typename T>
const Engine<T>& widest_engine() {
  static const Engine<T>* engine = [] {
    int rank = widest_allowed_rank();
    while (engine_at<T>(rank) == nullptr) ++rank;
    return engine_at<T>(rank);
  }();
  return *engine;
}

}  // namespace

#if !FASTLSTM_CPU_X86_ENGINES
template <>
const Engine<float>* avx512_engine<float>() { return nullptr; }
template <>
const Engine<double>* avx512_engine<double>() { return nullptr; }
template <>
const Engine<float>* avx2_engine<float>() { return nullptr; }
template <>
const Engine<double>* avx2_engine<double>() { return nullptr; }
#endif

template <>
const Engine<float>& generic_engine<float>() { return kGenericFloat; }
template <>
const Engine<double>& generic_engine<double>() { return kGenericDouble; }

template <>
const Engine<float>& cpu_engine<float>() { return widest_engine<float>(); }
template <>
const Engine<double>& cpu_engine<double>() { return widest_engine<double>(); }

std::string cpu_engine_name() { return cpu_engine<float>().isa; }

}  // namespace fastlstm::cpu
