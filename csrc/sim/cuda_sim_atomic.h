// cuda::atomic_ref of libcu++ (<cuda/atomic>) for the CPU SIMT emulator: the
// flags and counters by which blocks of a cooperative launch hand data to
// each other. The operations are sequentially consistent on the host; what
// the emulator adds is the check of the protocol: a store that another block
// reads must be a release (or follow a __threadfence() made after the
// storing thread's last barrier), and a load that sees another block's store
// must be an acquire (or be followed by a __threadfence() before the reading
// thread's next barrier). Kernels include <cuda/atomic> under nvcc and NVRTC.
#pragma once

#include <atomic>

#include "cuda_sim.h"

namespace cuda {

enum thread_scope { thread_scope_system, thread_scope_device, thread_scope_block,
                    thread_scope_thread };

using memory_order = std::memory_order;
inline constexpr memory_order memory_order_relaxed = std::memory_order_relaxed;
inline constexpr memory_order memory_order_acquire = std::memory_order_acquire;
inline constexpr memory_order memory_order_release = std::memory_order_release;
inline constexpr memory_order memory_order_acq_rel = std::memory_order_acq_rel;
inline constexpr memory_order memory_order_seq_cst = std::memory_order_seq_cst;

template <typename T, thread_scope Scope = thread_scope_system>
class atomic_ref {
  static_assert(std::is_integral<T>::value, "the emulator's atomic_ref holds integers");

 public:
  explicit atomic_ref(T& ref) : address_(&ref) {}

  T load(memory_order order = memory_order_seq_cst, FASTLSTM_SIM_CALL_SITE) const {
    const T value = __atomic_load_n(address_, __ATOMIC_SEQ_CST);
    ::fastlstm::sim::detail::atomic_observed(address_, acquires(order), FASTLSTM_SIM_WHERE);
    return value;
  }

  void store(T value, memory_order order = memory_order_seq_cst, FASTLSTM_SIM_CALL_SITE) const {
    ::fastlstm::sim::detail::atomic_published(address_, releases(order), FASTLSTM_SIM_WHERE);
    __atomic_store_n(address_, value, __ATOMIC_SEQ_CST);
  }

  // Checked as a store: a flag's waiters read it with load().
  T fetch_add(T value, memory_order order = memory_order_seq_cst, FASTLSTM_SIM_CALL_SITE) const {
    ::fastlstm::sim::detail::atomic_published(address_, releases(order), FASTLSTM_SIM_WHERE);
    return __atomic_fetch_add(address_, value, __ATOMIC_SEQ_CST);
  }

 private:
  static bool acquires(memory_order o) {
    return o == memory_order_acquire || o == memory_order_acq_rel || o == memory_order_seq_cst;
  }
  static bool releases(memory_order o) {
    return o == memory_order_release || o == memory_order_acq_rel || o == memory_order_seq_cst;
  }

  T* address_;
};

}  // namespace cuda
