// Runs one self-test of the CPU SIMT emulator in a given scheduling order and
// checks it against the host:
//   sim_selftest CASE [forward|reverse|random] [SEED]
//   sim_selftest bench
// Prints one line; exit status 0: correct result, 1: wrong result, 2: the
// launch raised SimError and the emulator then ran a correct kernel, 3: it
// raised SimError and the next launch failed, 64: bad usage.
// Built and driven by tests/test_sim.py.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "sim_kernels.cuh"

namespace {

namespace sim = fastlstm::sim;
using namespace simtest;

// Host-only: an exception escaping a kernel must fail the launch, not the process.
__global__ void throwing_kernel(int* out) {
  if (threadIdx.x == 5) throw std::runtime_error("planted failure");
  __syncthreads();
  out[threadIdx.x] = 1;
}

// Small integers, so that float sums are exact in any order.
float small_value(size_t i) { return float(int(i * 7 % 13) - 6); }

struct Check {
  bool ok = true;
  std::string first_failure;
  void expect(bool condition, const std::string& what) {
    if (!condition && ok) first_failure = what;
    ok = ok && condition;
  }
};

template <bool kAllBarriers>
Check run_block_sum() {
  constexpr int kBlocks = 4, kThreads = 256;
  std::vector<float> in(kBlocks * kThreads), out(kBlocks, -1.0f);
  for (size_t i = 0; i < in.size(); ++i) in[i] = small_value(i);
  sim::launch(dim3(kBlocks), dim3(kThreads), 0, block_sum<kAllBarriers>, in.data(), out.data());
  Check check;
  for (int b = 0; b < kBlocks; ++b) {
    float expected = 0;
    for (int t = 0; t < kThreads; ++t) expected += in[b * kThreads + t];
    check.expect(out[b] == expected, "block " + std::to_string(b) + ": " + std::to_string(out[b]) +
                                         " != " + std::to_string(expected));
  }
  return check;
}

Check run_shuffle_reduction() {
  constexpr unsigned kBlocks = 3, kThreads = 84;  // two full warps and one of 20 lanes
  std::vector<float> f(kBlocks * kThreads);
  std::vector<int> n(f.size());
  std::vector<double> out(8 * f.size(), -1);
  for (size_t i = 0; i < f.size(); ++i) {
    f[i] = small_value(i);
    n[i] = int(i * 31 % 101) - 50;
  }
  sim::launch(dim3(kBlocks), dim3(kThreads), 0, shuffle_reduction, f.data(), n.data(), out.data());
  Check check;
  for (unsigned i = 0; i < f.size(); ++i) {
    const unsigned t = i % kThreads, lane = t % 32, first = i - lane;
    const unsigned lanes = std::min(32u, kThreads - (t - lane));
    auto sum_n = [&](unsigned from, unsigned count) {
      int s = 0;
      for (unsigned l = from; l < from + count; ++l) s += n[first + l];
      return s;
    };
    const double* o = &out[8 * i];
    const std::string at = "thread " + std::to_string(i) + " output ";
    if (lanes == 32) {
      if (lane == 0) {
        float s = 0;
        for (unsigned l = 0; l < 32; ++l) s += f[first + l];
        check.expect(o[0] == s, at + "0 (float __shfl_down_sync sum)");
      }
      check.expect(o[1] == sum_n(0, 32), at + "1 (int __shfl_xor_sync sum)");
      check.expect(o[2] == sum_n(lane & ~7u, 8), at + "2 (width 8 sum)");
      check.expect(o[3] == ((lane & ~7u) | ((lane + 3) & 7)), at + "3 (width 8 rotation)");
      check.expect(o[4] == (lane % 16 + 5 < 16 ? lane + 5 : lane), at + "4 (width 16 down)");
      check.expect(o[5] == (lane % 16 >= 3 ? lane - 3 : lane), at + "5 (width 16 up)");
    } else {
      float scan = 0;
      for (unsigned l = 0; l <= lane; ++l) scan += f[first + l];
      check.expect(o[0] == scan, at + "0 (partial warp __shfl_up_sync scan)");
      check.expect(o[1] == n[first + lanes - 1], at + "1 (partial warp broadcast)");
      check.expect(o[2] == sum_n(lane & ~3u, 4), at + "2 (partial warp width 4 sum)");
    }
    check.expect(o[6] == double(f[first + 1]) * 1e-3 + n[first + 1], at + "6 (double broadcast)");
    check.expect(o[7] == 1, at + "7 (unsigned long long shuffle)");
  }
  return check;
}

Check run_tiled_matmul() {
  constexpr int m = 37, k = 29, n = 53;
  std::vector<float> a(m * k), b(k * n), c(m * n, -1.0f);
  for (size_t i = 0; i < a.size(); ++i) a[i] = float(int(i * 5 % 7) - 3);
  for (size_t i = 0; i < b.size(); ++i) b[i] = float(int(i * 3 % 7) - 3);
  const dim3 grid((n + kTile - 1) / kTile, (m + kTile - 1) / kTile), block(kTile, kTile);
  sim::launch(grid, block, 0, tiled_matmul, a.data(), b.data(), c.data(), m, n, k);
  Check check;
  for (int r = 0; r < m; ++r)
    for (int col = 0; col < n; ++col) {
      float expected = 0;
      for (int x = 0; x < k; ++x) expected += a[r * k + x] * b[x * n + col];
      check.expect(c[r * n + col] == expected,
                   "C[" + std::to_string(r) + "][" + std::to_string(col) + "]");
    }
  return check;
}

Check run_grid_sync_loop() {
  constexpr unsigned kBlocks = 6, kThreads = 64, kCells = kBlocks * kThreads;
  constexpr int kSteps = 25;  // odd: the result ends in b
  std::vector<unsigned> a(kCells), b(kCells, 0), expected(kCells);
  for (unsigned i = 0; i < kCells; ++i) a[i] = i * 2654435761u;
  expected = a;
  for (int step = 0; step < kSteps; ++step) {
    std::vector<unsigned> next(kCells);
    for (unsigned i = 0; i < kCells; ++i)
      next[i] = expected[(i + kCells - 1) % kCells] + 2 * expected[i] + expected[(i + 1) % kCells];
    expected = next;
  }
  sim::launch_cooperative(dim3(kBlocks), dim3(kThreads), 0, ring_stencil, a.data(), b.data(),
                          kSteps);
  Check check;
  for (unsigned i = 0; i < kCells; ++i)
    check.expect(b[i] == expected[i], "cell " + std::to_string(i));
  return check;
}

Check run_dynamic_shared() {
  constexpr unsigned kBlocks = 3, kThreads = 96;
  std::vector<float> in(kBlocks * kThreads), out(in.size(), -1.0f);
  std::vector<int> poisoned(kBlocks, 0);
  for (size_t i = 0; i < in.size(); ++i) in[i] = small_value(i);
  sim::launch(dim3(kBlocks), dim3(kThreads), (2 * kThreads + 1) * sizeof(float), dynamic_mirror,
              in.data(), out.data(), poisoned.data());
  Check check;
  for (unsigned i = 0; i < in.size(); ++i) {
    const unsigned block = i / kThreads, t = i % kThreads;
    check.expect(out[i] == 3 * in[block * kThreads + kThreads - 1 - t], "out " + std::to_string(i));
  }
  for (unsigned block = 0; block < kBlocks; ++block)
    check.expect(poisoned[block] == 1,
                 "unwritten shared memory of block " + std::to_string(block) + " is not NaN");
  return check;
}

Check run_votes() {
  constexpr unsigned kBlocks = 2, kThreads = 70;  // two full warps and one of 6 lanes
  std::vector<int> in(kBlocks * kThreads);
  std::vector<unsigned> out(4 * in.size(), 12345);
  for (size_t i = 0; i < in.size(); ++i) in[i] = int(i * i % 17);
  for (unsigned i = 64; i < 70; ++i) in[i] = 3 * int(i);  // one all-true warp
  sim::launch(dim3(kBlocks), dim3(kThreads), 0, votes, in.data(), out.data());
  Check check;
  for (unsigned i = 0; i < in.size(); ++i) {
    const unsigned t = i % kThreads, lane = t % 32, first = i - lane;
    const unsigned lanes = std::min(32u, kThreads - (t - lane));
    const unsigned mask = lanes == 32 ? ~0u : (1u << lanes) - 1;
    unsigned ballot = 0;
    for (unsigned l = 0; l < lanes; ++l) ballot |= unsigned(in[first + l] % 3 == 0) << l;
    const std::string at = "thread " + std::to_string(i);
    check.expect(out[4 * i] == ballot, at + " ballot");
    check.expect(out[4 * i + 1] == unsigned(ballot == mask), at + " all");
    check.expect(out[4 * i + 2] == unsigned(ballot != 0), at + " any");
    check.expect(out[4 * i + 3] == mask, at + " activemask");
  }
  return check;
}

Check run_exited_threads_at_barrier() {
  constexpr unsigned kThreads = 96, kLive = 40;
  std::vector<int> in(kThreads), out(kThreads, -1);
  for (unsigned i = 0; i < kThreads; ++i) in[i] = int(i * i);
  sim::launch(1, kThreads, 0, reverse_first_n, in.data(), out.data(), kLive);
  Check check;
  for (unsigned i = 0; i < kThreads; ++i)
    check.expect(out[i] == (i < kLive ? in[kLive - 1 - i] : -1), "out " + std::to_string(i));
  return check;
}

// Misuse: each must raise SimError from the launch.
Check run_misuse(const std::function<void(int*)>& launch) {
  std::vector<int> out(4096, 0);
  launch(out.data());
  Check check;
  check.expect(false, "the launch did not raise SimError");
  return check;
}

const std::vector<std::pair<std::string, std::function<Check()>>>& cases() {
  static const std::vector<std::pair<std::string, std::function<Check()>>> all = {
      {"missing_syncthreads", run_block_sum<false>},
      {"with_syncthreads", run_block_sum<true>},
      {"shuffle_reduction", run_shuffle_reduction},
      {"tiled_matmul", run_tiled_matmul},
      {"grid_sync_loop", run_grid_sync_loop},
      {"dynamic_shared", run_dynamic_shared},
      {"ballot_vote", run_votes},
      {"exited_threads_at_barrier", run_exited_threads_at_barrier},
      {"divergent_syncthreads",
       [] { return run_misuse([](int* o) { sim::launch(1, 32, 0, divergent_barrier, o); }); }},
      {"shfl_exited_lane",
       [] {
         return run_misuse([](int* o) { sim::launch(1, 32, 0, shuffle_with_exited_lane, o); });
       }},
      {"grid_sync_noncooperative",
       [] { return run_misuse([](int* o) { sim::launch(2, 32, 0, grid_sync_kernel, o); }); }},
      {"too_many_threads",
       [] { return run_misuse([](int* o) { sim::launch(1, 2048, 0, grid_sync_kernel, o); }); }},
      {"zero_grid",
       [] {
         return run_misuse([](int* o) { sim::launch(dim3(4, 0), 32, 0, grid_sync_kernel, o); });
       }},
      {"mismatched_collectives",
       [] { return run_misuse([](int* o) { sim::launch(1, 32, 0, mismatched_collectives, o); }); }},
      {"shfl_source_outside_mask",
       [] {
         return run_misuse([](int* o) { sim::launch(1, 32, 0, shuffle_source_outside_mask, o); });
       }},
      {"mask_beyond_partial_warp",
       [] {
         return run_misuse([](int* o) { sim::launch(1, 20, 0, mask_beyond_partial_warp, o); });
       }},
      {"cooperative_block_exits",
       [] {
         return run_misuse([](int* o) { sim::launch_cooperative(4, 32, 0, block_leaves_grid, o); });
       }},
      {"kernel_throws",
       [] { return run_misuse([](int* o) { sim::launch(2, 64, 0, throwing_kernel, o); }); }},
  };
  return all;
}

double seconds_per_call(int calls, const std::function<void()>& call) {
  call();  // maps the stacks
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) call();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / calls;
}

int bench() {
  std::vector<float> out(8 * 1024);
  for (unsigned threads : {128u, 256u}) {
    const double launch =
        seconds_per_call(200, [&] { sim::launch(1, threads, 0, ten_barriers, out.data()); });
    // Each thread is resumed 11 times: at the start and after each barrier.
    std::printf(
        "1 block x %u threads, 10 __syncthreads: %.1f us per launch, %.1f ns per fiber switch\n",
        threads, launch * 1e6, launch * 1e9 / (threads * 11.0));
  }
  std::vector<unsigned> a(6 * 64), b(a.size());
  const double cooperative = seconds_per_call(
      50, [&] { sim::launch_cooperative(6, 64, 0, ring_stencil, a.data(), b.data(), 10); });
  std::printf("cooperative 6 blocks x 64 threads, 10 grid syncs: %.1f us per launch\n",
              cooperative * 1e6);
  return 0;
}

bool parse_order(const std::string& name, sim::Order* order) {
  static const std::pair<const char*, sim::Order> orders[] = {{"forward", sim::Order::Forward},
                                                              {"reverse", sim::Order::Reverse},
                                                              {"random", sim::Order::Random}};
  for (const auto& [text, value] : orders)
    if (name == text) {
      *order = value;
      return true;
    }
  return false;
}

int usage(const char* program) {
  std::fprintf(stderr, "usage: %s CASE [forward|reverse|random] [SEED] | bench\ncases:", program);
  for (const auto& entry : cases()) std::fprintf(stderr, " %s", entry.first.c_str());
  std::fprintf(stderr, "\n");
  return 64;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "bench") == 0) return bench();
  sim::Options options;
  if (argc < 2 || argc > 4 || (argc >= 3 && !parse_order(argv[2], &options.order))) {
    return usage(argv[0]);
  }
  if (argc == 4) options.seed = std::strtoull(argv[3], nullptr, 10);
  sim::set_options(options);
  const std::string label = std::string(argv[1]) + " " + (argc >= 3 ? argv[2] : "forward") +
                            " seed=" + std::to_string(options.seed);
  for (const auto& [name, run] : cases()) {
    if (name != argv[1]) continue;
    try {
      const Check check = run();
      std::printf("%s: %s\n", label.c_str(),
                  check.ok ? "correct" : ("wrong: " + check.first_failure).c_str());
      return check.ok ? 0 : 1;
    } catch (const sim::SimError& error) {
      std::printf("%s: SimError: %s\n", label.c_str(), error.what());
      try {  // a failed launch must leave the emulator usable
        const Check after = run_block_sum<true>();
        if (!after.ok) std::printf("the next launch went wrong: %s\n", after.first_failure.c_str());
        return after.ok ? 2 : 3;
      } catch (const sim::SimError& next_error) {
        std::printf("the next launch failed: %s\n", next_error.what());
        return 3;
      }
    }
  }
  std::fprintf(stderr, "unknown case %s\n", argv[1]);
  return usage(argv[0]);
}
