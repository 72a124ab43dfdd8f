// A team of threads for the CPU engine: one OpenMP parallel region whose
// threads meet at a spin barrier, so that a whole run of recurrent steps
// costs one fork and join instead of one per GEMM and per elementwise pass.
// Torch-free. Nothing here is compiled per instruction set.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#if defined(__linux__)
#include <unistd.h>
#endif

namespace fastlstm::cpu {

inline void pause_briefly() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins briefly (a step is microseconds), then yields, so that a descheduled
// partner on a busy host gets the core; independent of OMP_WAIT_POLICY,
// whose PASSIVE setting would sleep in the kernel at every step.
template <typename Ready>
void spin_until(const Ready& ready) {
  constexpr int kSpinsBeforeYield = 4000;
  for (int spins = 0; !ready(); ++spins) {
    if (spins < kSpinsBeforeYield) {
      pause_briefly();
    } else {
      std::this_thread::yield();
    }
  }
}

// The barrier of a team; it waits by spin_until.
class SpinBarrier {
 public:
  explicit SpinBarrier(int threads) : threads_(threads) {}
  void arrive_and_wait();

 private:
  int threads_;
  alignas(64) std::atomic<int> arrived_{0};
  alignas(64) std::atomic<unsigned> generation_{0};
};

// [first, last) of `count` items for member `tid` of a team of `threads`.
struct Slice {
  int64_t first, last;
};
inline Slice slice_of(int64_t count, int tid, int threads) {
  return {count * tid / threads, count * (tid + 1) / threads};
}

// One core's L2 as the OS reports it (512 KB where it does not say): by the
// machine only, so that results still depend on the shape alone there.
inline int64_t core_l2_bytes() {
  static const int64_t bytes = [] {
    int64_t reported = 0;
#if defined(__linux__) && defined(_SC_LEVEL2_CACHE_SIZE)
    reported = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    return reported > 0 ? reported : int64_t{512} << 10;
  }();
  return bytes;
}

using TeamBody = void (*)(void* context, int tid, int threads, SpinBarrier& barrier);

// Runs body(context, tid, threads, barrier) on every member of a team of at
// most `threads` threads (fewer if the runtime gives fewer; one runs inline).
// A body must not depend on the team size for its results, only for its
// share of the work.
void run_team_erased(int threads, TeamBody body, void* context);

template <typename Body>
void run_team(int threads, Body& body) {
  run_team_erased(
      threads,
      [](void* context, int tid, int team, SpinBarrier& barrier) {
        (*static_cast<Body*>(context))(tid, team, barrier);
      },
      &body);
}

}  // namespace fastlstm::cpu
