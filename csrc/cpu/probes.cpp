// The probes of the machine's ceilings (engine/probes.h) as ops, for the
// benchmark's bound column (fastlstm/bench/bounds.py): each runs on a team
// of `threads` members of the engine of `dtype` at once, every member timed
// from one barrier, and returns the team's rate over its slowest member.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "engine.h"
#include "engine/team.h"

namespace fastlstm::cpu {
namespace {

template <typename Run>
double on_engine_of(at::ScalarType dtype, const Run& run) {
  if (dtype == at::kDouble) return run(cpu_engine<double>(), double{});
  TORCH_CHECK(dtype == at::kFloat, "fastlstm: the CPU probes take float32 or float64, got ",
              dtype);
  return run(cpu_engine<float>(), float{});
}

// Work done per second by a team running member_work(tid, team) (which
// returns the work it did) at once, after prepare(tid, team): their total
// over the slowest member's time.
template <typename Prepare, typename Work>
double team_rate(int64_t threads, const Prepare& prepare, const Work& member_work) {
  std::vector<double> work(threads, 0.0), seconds(threads, 0.0);
  auto body = [&](int tid, int team, SpinBarrier& barrier) {
    prepare(tid, team);
    barrier.arrive_and_wait();
    const auto start = std::chrono::steady_clock::now();
    work[tid] = member_work(tid, team);
    seconds[tid] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  run_team(static_cast<int>(threads), body);
  double total = 0;
  for (double w : work) total += w;
  return total / *std::max_element(seconds.begin(), seconds.end());
}

// FLOP/s of fused multiply-adds on full vectors, every member at once.
double probe_fma_rate(at::ScalarType dtype, int64_t threads, int64_t iterations) {
  TORCH_CHECK(threads > 0 && iterations > 0, "fastlstm: probe with threads and iterations > 0");
  return on_engine_of(dtype, [&](const auto& e, auto) {
    return team_rate(threads, [](int, int) {}, [&](int, int) { return e.fma_probe(iterations); });
  });
}

// Bytes/s at which the team reads a buffer of `bytes` split into one slice
// per member, each slice read `passes` times (every other pass backwards)
// after one pass that brings it into the member's caches.
double probe_read_rate(at::ScalarType dtype, int64_t bytes, int64_t threads, int64_t passes) {
  TORCH_CHECK(threads > 0 && passes > 0 && bytes > 0, "fastlstm: probe with threads, passes and "
              "bytes > 0");
  return on_engine_of(dtype, [&](const auto& e, auto zero) {
    using T = decltype(zero);
    const int64_t n = bytes / static_cast<int64_t>(sizeof(T));
    const at::Tensor buffer = at::ones({n}, at::TensorOptions().dtype(dtype));
    const T* data = buffer.data_ptr<T>();
    auto read = [&](int tid, int team, int64_t times) {
      const Slice mine = slice_of(n, tid, team);
      return e.read_probe(data + mine.first, mine.last - mine.first, times);
    };
    return team_rate(
        threads, [&](int tid, int team) { read(tid, team, 1); },
        [&](int tid, int team) { return read(tid, team, passes); });
  });
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fastlstm, m) {
  // The ceilings the benchmark's bound column divides by, probed in the same
  // run: FLOP/s of the CPU engine's FMAs, and bytes/s of a team's reads of a
  // buffer split over its members, as the recurrences read their weights.
  m.def("_cpu_probe_fma(ScalarType dtype, int threads, int iterations) -> float",
        &probe_fma_rate);
  m.def("_cpu_probe_read(ScalarType dtype, int bytes, int threads, int passes) -> float",
        &probe_read_rate);
}

}  // namespace fastlstm::cpu
