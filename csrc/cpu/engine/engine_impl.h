// Every template of the CPU engine, gathered into an Engine table for one
// vector type. Included by one translation unit per instruction set
// (engine_avx2.cpp, engine_generic.cpp), each with its own FASTLSTM_CPU_ISA.
#pragma once

#include "../engine.h"
#include "backward.h"
#include "elementwise.h"
#include "forward.h"
#include "gemm.h"
#include "panels.h"
#include "probes.h"

namespace fastlstm::cpu::FASTLSTM_CPU_ISA {

template <typename V>
constexpr Engine<typename V::Scalar> engine_of(const char* isa) {
  return {isa,
          gemm_nn<V>,
          gemm_nt<V>,
          panels_per_group,
          projects_input_in_steps,
          gate_panels_size<V>,
          pack_gate_panels<V>,
          panels_size<V>,
          pack_panels<V>,
          forward_steps<V>,
          backward_steps<V>,
          cell_rows<V>,
          cell_grad_rows<V>,
          hidden_rows<V>,
          add_column_sums<V>,
          activations<V>,
          fma_probe<V>,
          read_probe<V>};
}

}  // namespace fastlstm::cpu::FASTLSTM_CPU_ISA
