#include "team.h"

#include <omp.h>

namespace fastlstm::cpu {

void SpinBarrier::arrive_and_wait() {
  if (threads_ <= 1) return;
  const unsigned gen = generation_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == threads_) {
    arrived_.store(0, std::memory_order_relaxed);
    generation_.store(gen + 1, std::memory_order_release);
    return;
  }
  spin_until([&] { return generation_.load(std::memory_order_acquire) != gen; });
}

void run_team_erased(int threads, TeamBody body, void* context) {
  if (threads <= 1) {
    SpinBarrier alone(1);
    body(context, 0, 1, alone);
    return;
  }
  SpinBarrier* barrier = nullptr;
#pragma omp parallel num_threads(threads)
  {
    // The runtime may give fewer threads than asked for: size the barrier
    // to the team there is.
#pragma omp single
    barrier = new SpinBarrier(omp_get_num_threads());
    body(context, omp_get_thread_num(), omp_get_num_threads(), *barrier);
  }
  delete barrier;
}

}  // namespace fastlstm::cpu
