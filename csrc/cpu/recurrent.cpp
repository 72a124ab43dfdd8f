#include "recurrent.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "../gate_math.h"
#include "cell_loops.h"

namespace fastlstm::cpu {
namespace {

constexpr int64_t kPanelWidth = 64;  // floats per panel row: four AVX-512 vectors
constexpr int kMaxBlockRows = 6;     // 6 rows x 4 vectors = 24 accumulators
constexpr int64_t kDepthChunk = 128; // panel rows per pass: 32 KiB, stays in L1

// Below this many multiply-adds per step the fork/join per step of the
// batched path costs more than the step itself; above it the batched path's
// brgemm GEMMs are as fast as our micro-kernel. In units of B * H * 4H.
constexpr int64_t kMaxPersistentStepMacs = int64_t{1} << 26;

int persistent_setting() {  // -1: by shape (default), 0: never, 1: always when eligible
  static const int setting = [] {
    const char* v = std::getenv("FASTLSTM_CPU_PERSISTENT");
    if (v == nullptr || *v == '\0') return -1;
    return std::strcmp(v, "0") == 0 ? 0 : 1;
  }();
  return setting;
}

bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}

bool eligible(const LayerShape& s, at::ScalarType dtype, bool projected) {
  if (dtype != at::kFloat || projected || s.hidden == 0 || s.batch <= 0) return false;
  if (!cpu_has_avx512() || persistent_setting() == 0) return false;
  if (persistent_setting() == 1) return true;
  return s.batch * s.hidden * 4 * s.hidden <= kMaxPersistentStepMacs;
}

// One barrier per step. Spins briefly (a step is microseconds), then yields
// so that a descheduled partner on a busy host gets the core; independent of
// OMP_WAIT_POLICY, whose PASSIVE setting would sleep in the kernel at every
// step.
class StepBarrier {
 public:
  void set_threads(int threads) { threads_ = threads; }
  void arrive_and_wait() {
    if (threads_ == 1) return;
    const unsigned gen = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == threads_) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.store(gen + 1, std::memory_order_release);
      return;
    }
    for (int spins = 0; generation_.load(std::memory_order_acquire) == gen; ++spins) {
      if (spins < kSpinsBeforeYield) {
        _mm_pause();
      } else {
        std::this_thread::yield();
      }
    }
  }

 private:
  static constexpr int kSpinsBeforeYield = 4000;
  int threads_ = 1;
  alignas(64) std::atomic<int> arrived_{0};
  alignas(64) std::atomic<unsigned> generation_{0};
};

// tile[RB][64] (+)= a[RB][k0:k1] . panel[k0:k1][64], each element one FMA chain
// in increasing k, continued from the tile unless `fresh`.
template <int RB>
__attribute__((target("avx512f"))) void panel_block(const float* const* a, int64_t k0,
                                                    int64_t k1, const float* panel, float* tile,
                                                    bool fresh) {
  __m512 acc[RB][4];
#pragma GCC unroll 8
  for (int r = 0; r < RB; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      acc[r][v] = fresh ? _mm512_setzero_ps() : _mm512_loadu_ps(tile + r * kPanelWidth + v * 16);
    }
  }
  for (int64_t k = k0; k < k1; ++k) {
    const float* w = panel + k * kPanelWidth;
    const __m512 w0 = _mm512_loadu_ps(w), w1 = _mm512_loadu_ps(w + 16);
    const __m512 w2 = _mm512_loadu_ps(w + 32), w3 = _mm512_loadu_ps(w + 48);
#pragma GCC unroll 8
    for (int r = 0; r < RB; ++r) {
      const __m512 x = _mm512_set1_ps(a[r][k]);
      acc[r][0] = _mm512_fmadd_ps(x, w0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(x, w1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_ps(x, w2, acc[r][2]);
      acc[r][3] = _mm512_fmadd_ps(x, w3, acc[r][3]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < RB; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) _mm512_storeu_ps(tile + r * kPanelWidth + v * 16, acc[r][v]);
  }
}

using PanelBlockFn = void (*)(const float* const*, int64_t, int64_t, const float*, float*, bool);
constexpr PanelBlockFn kPanelBlocks[kMaxBlockRows + 1] = {
    nullptr,         panel_block<1>, panel_block<2>, panel_block<3>,
    panel_block<4>,  panel_block<5>, panel_block<6>};

// tile[rows][64] = a[rows][0:K] . panel[0:K][64]. The panel is walked in
// chunks that stay in L1 while every block of rows passes over them.
void panel_product(int64_t rows, const float* const* a, int64_t K, const float* panel,
                   float* tile) {
  for (int64_t k0 = 0; k0 < K; k0 += kDepthChunk) {
    const int64_t k1 = std::min(K, k0 + kDepthChunk);
    for (int64_t r0 = 0; r0 < rows; r0 += kMaxBlockRows) {
      const int64_t block = std::min<int64_t>(kMaxBlockRows, rows - r0);
      kPanelBlocks[block](a + r0, k0, k1, panel, tile + r0 * kPanelWidth, k0 == 0);
    }
  }
}

// [first, last) of `count` items for thread `tid` of `threads`.
struct Slice {
  int64_t first, last;
};
Slice slice_of(int64_t count, int tid, int threads) {
  return {count * tid / threads, count * (tid + 1) / threads};
}

// Runs body(tid, threads, barrier) on every thread of one parallel region.
// Inside another parallel region (nested), or with one thread, runs inline.
template <typename Body>
void persistent_region(const Body& body) {
  const int requested = at::in_parallel_region() ? 1 : at::get_num_threads();
  StepBarrier barrier;
  if (requested <= 1) {
    body(0, 1, barrier);
    return;
  }
#pragma omp parallel num_threads(requested)
  {
#pragma omp single
    barrier.set_threads(omp_get_num_threads());
    body(omp_get_thread_num(), omp_get_num_threads(), barrier);
  }
}

}  // namespace

bool use_persistent_forward(const LayerShape& s, at::ScalarType dtype, bool projected) {
  return eligible(s, dtype, projected);
}

bool use_persistent_backward(const LayerShape& s, at::ScalarType dtype, bool projected) {
  return eligible(s, dtype, projected);
}

at::Tensor pack_gate_panels(const at::Tensor& w_hh) {
  const int64_t H = w_hh.size(1);
  const int64_t panels = (H + kPanelUnits - 1) / kPanelUnits;
  at::Tensor packed = at::empty({panels, H, kPanelWidth}, w_hh.options());
  const float* w = w_hh.data_ptr<float>();
  float* out = packed.data_ptr<float>();
  at::parallel_for(0, panels, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      float* panel = out + p * H * kPanelWidth;
      for (int64_t g = 0; g < kNumGates; ++g) {
        for (int64_t u = 0; u < kPanelUnits; ++u) {
          const int64_t j = p * kPanelUnits + u;
          const float* row = w + (g * H + j) * H;
          float* dst = panel + g * kPanelUnits + u;
          for (int64_t k = 0; k < H; ++k) dst[k * kPanelWidth] = j < H ? row[k] : 0.f;
        }
      }
    }
  });
  return packed;
}

at::Tensor pack_column_panels(const at::Tensor& w_hh) {
  const int64_t H = w_hh.size(1), rows = w_hh.size(0);
  const int64_t panels = (H + kPanelCols - 1) / kPanelCols;
  at::Tensor packed = at::zeros({panels, rows, kPanelWidth}, w_hh.options());
  const float* w = w_hh.data_ptr<float>();
  float* out = packed.data_ptr<float>();
  at::parallel_for(0, panels, 1, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t col0 = q * kPanelCols, cols = std::min(kPanelCols, H - col0);
      for (int64_t n = 0; n < rows; ++n) {
        std::memcpy(out + (q * rows + n) * kPanelWidth, w + n * H + col0, cols * sizeof(float));
      }
    }
  });
  return packed;
}

void persistent_forward_steps(const PersistentForward& f, int64_t k_begin, int64_t k_end) {
  const StepSchedule& sched = *f.sched;
  const int64_t H = f.hidden, B = sched.steps() ? sched.batch[0] : 0;
  const int64_t panels = (H + kPanelUnits - 1) / kPanelUnits;
  const int threads = at::in_parallel_region() ? 1 : at::get_num_threads();
  // Per-thread scratch, allocated once per call: row pointers and the tile.
  std::vector<const float*> row_ptrs(static_cast<size_t>(threads) * B);
  std::vector<float> tiles(static_cast<size_t>(threads) * B * kPanelWidth);
  persistent_region([&](int tid, int team, StepBarrier& barrier) {
    const Slice own = slice_of(panels, tid, team);
    const int64_t j0 = own.first * kPanelUnits, j1 = std::min(H, own.last * kPanelUnits);
    const float** h_rows = row_ptrs.data() + static_cast<size_t>(tid) * B;
    float* tile = tiles.data() + static_cast<size_t>(tid) * B * kPanelWidth;
    for (int64_t k = k_begin; k < k_end; ++k) {
      const int64_t t = sched.step_at(k, f.reverse);
      const int64_t rows = sched.batch[t], off = sched.offset[t];
      const int64_t carried = sched.carried_rows(t, f.reverse);
      const int64_t prev_off = carried ? sched.offset[sched.prev_step(t, f.reverse)] : 0;
      for (int64_t b = 0; b < rows; ++b) {
        h_rows[b] = b < carried ? f.output + (prev_off + b) * H : f.h0 + b * H;
      }
      float* gates = f.gates + (off - f.gates_row0) * 4 * H;
      for (int64_t p = own.first; p < own.last; ++p) {
        panel_product(rows, h_rows, H, f.gate_panels + p * H * kPanelWidth, tile);
        const int64_t unit0 = p * kPanelUnits, units = std::min(kPanelUnits, H - unit0);
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t g = 0; g < kNumGates; ++g) {
            float* dst = gates + r * 4 * H + g * H + unit0;
            const float* src = tile + r * kPanelWidth + g * kPanelUnits;
            for (int64_t u = 0; u < units; ++u) dst[u] += src[u];
          }
        }
      }
      if (j0 < j1) {
        for (int64_t r = 0; r < rows; ++r) {
          float* cell = f.cells + (f.cells_saved ? off + r : r) * H;
          forward_units<float>(H, j0, j1, gates + r * 4 * H, f.bias, f.c_state + r * H, cell,
                               f.output + (off + r) * H);
        }
      }
      barrier.arrive_and_wait();  // h_t complete before any thread reads it
    }
  });
}

void persistent_backward_steps(const PersistentBackward& d) {
  const StepSchedule& sched = *d.sched;
  const int64_t H = d.hidden, B = sched.steps() ? sched.batch[0] : 0;
  const int64_t panels = (H + kPanelCols - 1) / kPanelCols;
  const int threads = at::in_parallel_region() ? 1 : at::get_num_threads();
  std::vector<const float*> row_ptrs(static_cast<size_t>(threads) * B);
  std::vector<float> tiles(static_cast<size_t>(threads) * B * kPanelWidth);
  persistent_region([&](int tid, int team, StepBarrier& barrier) {
    const Slice own = slice_of(panels, tid, team);
    const int64_t j0 = own.first * kPanelCols, j1 = std::min(H, own.last * kPanelCols);
    const float** dg_rows = row_ptrs.data() + static_cast<size_t>(tid) * B;
    float* tile = tiles.data() + static_cast<size_t>(tid) * B * kPanelWidth;
    for (int64_t k = sched.steps() - 1; k >= 0; --k) {
      const int64_t t = sched.step_at(k, d.reverse);
      const int64_t rows = sched.batch[t], off = sched.offset[t];
      // Phase A: gate gradients of own units; needs only own columns of dh_state.
      if (j0 < j1) {
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t prev = sched.prev_row(t, r, d.reverse);
          const float* c_prev = prev >= 0 ? d.cells + prev * H : d.c0 + r * H;
          backward_units<float>(H, j0, j1, d.gates + (off + r) * 4 * H, d.cells + (off + r) * H,
                                c_prev, d.grad_output + (off + r) * H, d.dh_state + r * H,
                                d.dc_state + r * H, d.dgates + (off + r) * 4 * H);
        }
      }
      barrier.arrive_and_wait();  // every unit's dgates of step t written
      // Phase B: own columns of dL/dh_{t-1} = dgates_t . W_hh[:, own].
      for (int64_t r = 0; r < rows; ++r) dg_rows[r] = d.dgates + (off + r) * 4 * H;
      for (int64_t q = own.first; q < own.last; ++q) {
        panel_product(rows, dg_rows, 4 * H, d.column_panels + q * 4 * H * kPanelWidth, tile);
        const int64_t col0 = q * kPanelCols, cols = std::min(kPanelCols, H - col0);
        for (int64_t r = 0; r < rows; ++r) {
          std::memcpy(d.dh_state + r * H + col0, tile + r * kPanelWidth, cols * sizeof(float));
        }
      }
      // No barrier here: the next phase A reads only this thread's columns, and
      // writes dgates rows of another step than the ones others may still read.
    }
  });
}

}  // namespace fastlstm::cpu
