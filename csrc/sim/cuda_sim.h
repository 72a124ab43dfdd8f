// A CPU SIMT emulator: lets the host compiler build the CUDA kernels of
// csrc/kernels and run them, so that the tests exercise the very kernel code
// on machines without a GPU. Every CUDA thread is a fiber; the threads of a
// block run on one OS thread and switch only at barriers and warp
// collectives, in an order the tests choose (forward, reverse or random), so
// that a missing barrier shows up as a wrong result rather than as luck.
// Misuse (divergent barriers, inconsistent warp masks, deadlocks) raises
// SimError from launch() instead of hanging.
//
// Build: C++17, compile and link csrc/sim/cuda_sim.cpp, -pthread. Torch-free.
//
// Kernels see the part of CUDA they use: the execution-space keywords,
// __shared__, __align__, the built-in indices, barriers, warp shuffles and
// votes, __ldg, atomicAdd, __threadfence, __nanosleep, min/max and
// cooperative groups' this_grid() and this_thread_block(); cuda_sim_fp16.h
// adds __half and __nv_bfloat16, cuda_sim_wmma.h the WMMA functions, and
// cuda_sim_atomic.h cuda::atomic_ref, for flags between blocks.
//
// Cooperative launches run one block at a time, handing on only at grid
// barriers and __nanosleep(), in the launch's order; atomic stores and loads
// between blocks are checked for release and acquire order (or fences). __shared__ becomes
// `static thread_local`, which is why one OS thread never runs two blocks at
// once; such arrays keep the previous block's values (only dynamic shared
// memory is poisoned at block start).
#pragma once

#include <math.h>
#include <stdint.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

struct uint3 {
  unsigned int x, y, z;
};

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
      : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return {x, y, z}; }
};

namespace fastlstm::sim {

enum class Order { Forward, Reverse, Random };

struct Options {
  Order order = Order::Forward;
  uint64_t seed = 0;               // for Order::Random
  size_t stack_bytes = 64 * 1024;  // per CUDA thread
  double watchdog_seconds = 120;   // cooperative launches: longest wait without progress
};

// Process-wide; takes effect at the next launch. Also restarts the sequence
// of random orders, so that a test that sets a seed is reproducible.
void set_options(const Options&);
Options options();

struct SimError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The calling block's dynamic shared memory (launch's dynamic_smem bytes,
// 128-byte aligned, filled with 0xFF bytes when the block starts).
void* dynamic_shared_memory();

namespace detail {

struct ThreadCoords {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
};

// The running CUDA thread's indices; the runtime repoints it at each switch.
inline thread_local const ThreadCoords* current_coords = nullptr;

// Where a thread waits, for deadlock reports.
struct Where {
  const char* file;
  int line;
};

enum class Collective : uint8_t {
  SyncWarp,
  Shfl,
  ShflUp,
  ShflDown,
  ShflXor,
  Ballot,
  All,
  Any,
  WarpOperation,
};

// A warp-wide operation of the emulator's own libraries (the WMMA functions
// of cuda_sim_wmma.h), which every lane of a full warp must call. When the
// last lane arrives, `run` executes once, on that lane's stack, with every
// lane's argument, and only then may any lane go on: so a lane that runs
// ahead cannot see the operation half done, and the result does not depend
// on the scheduling order. Kernels see only the library's functions.
struct WarpOperation {
  const char* name;  // as kernels spell it, for reports
  // Does the work; returns why the lanes' arguments are invalid instead, or "".
  std::string (*run)(void* const lane_args[32]);
};

struct KernelCall {
  void (*invoke)(const void* bound);
  const void* bound;
};

void run_launch(dim3 grid, dim3 block, size_t dynamic_smem, bool cooperative, KernelCall call);
void sync_block(Where where);
void sync_grid(Where where);
uint64_t warp_collective(Collective kind, unsigned mask, uint64_t value, uint32_t lane_arg,
                         int width, Where where);
unsigned active_mask();
void sleep(Where where);
void thread_fence();
// Atomic accesses, for the checks of cross-block publishing (cuda_sim_atomic.h).
void atomic_published(const void* address, bool release, Where where);
void atomic_observed(const void* address, bool acquire, Where where);
// Lanes that reach different WarpOperation objects are making different calls.
void warp_operation(const WarpOperation& operation, void* lane_arg, Where where);

template <typename Bound>
void invoke_bound(const void* bound) {
  std::apply([](auto kernel, const auto&... args) { kernel(args...); },
             *static_cast<const Bound*>(bound));
}

template <typename... KArgs, typename... Args>
void launch_kernel(bool cooperative, dim3 grid, dim3 block, size_t dynamic_smem,
                   void (*kernel)(KArgs...), Args&&... args) {
  static_assert(sizeof...(KArgs) == sizeof...(Args),
                "fastlstm::sim: the number of arguments differs from the kernel's parameters");
  using Bound = std::tuple<void (*)(KArgs...), std::decay_t<KArgs>...>;
  const Bound bound(kernel, std::forward<Args>(args)...);
  run_launch(grid, block, dynamic_smem, cooperative, KernelCall{&invoke_bound<Bound>, &bound});
}

template <typename T>
T shuffle(Collective kind, unsigned mask, T var, uint32_t lane_arg, int width, Where where) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "warp shuffles move 4- or 8-byte values");
  uint64_t bits = 0;
  std::memcpy(&bits, &var, sizeof(T));
  bits = warp_collective(kind, mask, bits, lane_arg, width, where);
  std::memcpy(&var, &bits, sizeof(T));
  return var;
}

}  // namespace detail

// Blocks run one after another on the calling thread, in the order of
// options().order. Throws SimError on invalid dimensions, misuse or deadlock.
template <typename... KArgs, typename... Args>
void launch(dim3 grid, dim3 block, size_t dynamic_smem, void (*kernel)(KArgs...), Args&&... args) {
  detail::launch_kernel(false, grid, block, dynamic_smem, kernel, std::forward<Args>(args)...);
}

// All blocks live at once (one OS thread each), so that
// cooperative_groups::this_grid().sync() can be a real grid-wide barrier.
template <typename... KArgs, typename... Args>
void launch_cooperative(dim3 grid, dim3 block, size_t dynamic_smem, void (*kernel)(KArgs...),
                        Args&&... args) {
  detail::launch_kernel(true, grid, block, dynamic_smem, kernel, std::forward<Args>(args)...);
}

}  // namespace fastlstm::sim

// ---- What kernel code sees, spelled as CUDA spells it ----------------------

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// C++ allows no alignas in the middle of `static thread_local alignas(32) T`:
// spell an aligned array `__shared__ __align__(32) T` (CUDA's idiom) or
// `alignas(32) __shared__ T`, which both compilers accept.
#define __shared__ static thread_local

#define threadIdx (::fastlstm::sim::detail::current_coords->thread_idx)
#define blockIdx (::fastlstm::sim::detail::current_coords->block_idx)
#define blockDim (::fastlstm::sim::detail::current_coords->block_dim)
#define gridDim (::fastlstm::sim::detail::current_coords->grid_dim)

inline constexpr int warpSize = 32;

// The call site of a barrier or collective, captured by default arguments so
// that deadlock reports can say where each thread waits.
#define FASTLSTM_SIM_CALL_SITE \
  const char *sim_file = __builtin_FILE(), int sim_line = __builtin_LINE()
#define FASTLSTM_SIM_WHERE (::fastlstm::sim::detail::Where{sim_file, sim_line})

inline void __syncthreads(FASTLSTM_SIM_CALL_SITE) {
  ::fastlstm::sim::detail::sync_block(FASTLSTM_SIM_WHERE);
}

inline void __syncwarp(unsigned mask = 0xffffffffu, FASTLSTM_SIM_CALL_SITE) {
  using ::fastlstm::sim::detail::Collective;
  ::fastlstm::sim::detail::warp_collective(Collective::SyncWarp, mask, 0, 0, warpSize,
                                           FASTLSTM_SIM_WHERE);
}

// One overload per type, as CUDA declares them, so that overload resolution
// (bool -> int, and so on) is the same under both compilers.
#define FASTLSTM_SIM_SHUFFLES(T)                                                                  \
  inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize,                  \
                       FASTLSTM_SIM_CALL_SITE) {                                                  \
    return ::fastlstm::sim::detail::shuffle(::fastlstm::sim::detail::Collective::Shfl, mask, var, \
                                            uint32_t(src_lane), width, FASTLSTM_SIM_WHERE);       \
  }                                                                                               \
  inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize,             \
                          FASTLSTM_SIM_CALL_SITE) {                                               \
    return ::fastlstm::sim::detail::shuffle(::fastlstm::sim::detail::Collective::ShflUp, mask,    \
                                            var, delta, width, FASTLSTM_SIM_WHERE);               \
  }                                                                                               \
  inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize,           \
                            FASTLSTM_SIM_CALL_SITE) {                                             \
    return ::fastlstm::sim::detail::shuffle(::fastlstm::sim::detail::Collective::ShflDown, mask,  \
                                            var, delta, width, FASTLSTM_SIM_WHERE);               \
  }                                                                                               \
  inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize,             \
                           FASTLSTM_SIM_CALL_SITE) {                                              \
    return ::fastlstm::sim::detail::shuffle(::fastlstm::sim::detail::Collective::ShflXor, mask,   \
                                            var, uint32_t(lane_mask), width, FASTLSTM_SIM_WHERE); \
  }
FASTLSTM_SIM_SHUFFLES(int)
FASTLSTM_SIM_SHUFFLES(unsigned int)
FASTLSTM_SIM_SHUFFLES(long)
FASTLSTM_SIM_SHUFFLES(unsigned long)
FASTLSTM_SIM_SHUFFLES(long long)
FASTLSTM_SIM_SHUFFLES(unsigned long long)
FASTLSTM_SIM_SHUFFLES(float)
FASTLSTM_SIM_SHUFFLES(double)
#undef FASTLSTM_SIM_SHUFFLES

inline unsigned __ballot_sync(unsigned mask, int predicate, FASTLSTM_SIM_CALL_SITE) {
  using ::fastlstm::sim::detail::Collective;
  return unsigned(::fastlstm::sim::detail::warp_collective(Collective::Ballot, mask, predicate != 0,
                                                           0, warpSize, FASTLSTM_SIM_WHERE));
}
inline int __all_sync(unsigned mask, int predicate, FASTLSTM_SIM_CALL_SITE) {
  using ::fastlstm::sim::detail::Collective;
  return int(::fastlstm::sim::detail::warp_collective(Collective::All, mask, predicate != 0, 0,
                                                      warpSize, FASTLSTM_SIM_WHERE));
}
inline int __any_sync(unsigned mask, int predicate, FASTLSTM_SIM_CALL_SITE) {
  using ::fastlstm::sim::detail::Collective;
  return int(::fastlstm::sim::detail::warp_collective(Collective::Any, mask, predicate != 0, 0,
                                                      warpSize, FASTLSTM_SIM_WHERE));
}

// The warp's lanes that have not exited: the emulator has no notion of
// convergence, so this is the largest mask a kernel could legally use.
inline unsigned __activemask() { return ::fastlstm::sim::detail::active_mask(); }

// Also what makes a relaxed atomic store that follows it a release, and a
// relaxed atomic load before it an acquire, for the emulator's checks.
inline void __threadfence() {
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  ::fastlstm::sim::detail::thread_fence();
}

// Hands the OS thread to the block's other threads, and in a cooperative
// launch the turn to the other blocks: how a spin on memory that another
// block writes lets that block run.
inline void __nanosleep(unsigned, FASTLSTM_SIM_CALL_SITE) {
  ::fastlstm::sim::detail::sleep(FASTLSTM_SIM_WHERE);
}
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

template <typename T>
inline T __ldg(const T* ptr) {
  return *ptr;
}

// Blocks of cooperative launches run on concurrent OS threads.
inline int atomicAdd(int* address, int value) {
  return __atomic_fetch_add(address, value, __ATOMIC_SEQ_CST);
}
inline unsigned atomicAdd(unsigned* address, unsigned value) {
  return __atomic_fetch_add(address, value, __ATOMIC_SEQ_CST);
}
inline float atomicAdd(float* address, float value) {
  float old, sum;
  __atomic_load(address, &old, __ATOMIC_RELAXED);
  do {
    sum = old + value;
  } while (
      !__atomic_compare_exchange(address, &old, &sum, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
  return old;
}

// CUDA's host-and-device min/max: non-template overloads, so that they win
// over std::min/std::max where both are visible.
#define FASTLSTM_SIM_MIN_MAX(A, B, R, MIN, MAX)                                \
  inline R min(A a, B b) { return MIN(static_cast<R>(a), static_cast<R>(b)); } \
  inline R max(A a, B b) { return MAX(static_cast<R>(a), static_cast<R>(b)); }
#define FASTLSTM_SIM_LESS(a, b) ((b) < (a) ? (b) : (a))
#define FASTLSTM_SIM_MORE(a, b) ((a) < (b) ? (b) : (a))
#define FASTLSTM_SIM_INTEGER_MIN_MAX(T) \
  FASTLSTM_SIM_MIN_MAX(T, T, T, FASTLSTM_SIM_LESS, FASTLSTM_SIM_MORE)
FASTLSTM_SIM_INTEGER_MIN_MAX(int)
FASTLSTM_SIM_INTEGER_MIN_MAX(unsigned int)
FASTLSTM_SIM_INTEGER_MIN_MAX(long)
FASTLSTM_SIM_INTEGER_MIN_MAX(unsigned long)
FASTLSTM_SIM_INTEGER_MIN_MAX(long long)
FASTLSTM_SIM_INTEGER_MIN_MAX(unsigned long long)
FASTLSTM_SIM_MIN_MAX(int, unsigned int, unsigned int, FASTLSTM_SIM_LESS, FASTLSTM_SIM_MORE)
FASTLSTM_SIM_MIN_MAX(unsigned int, int, unsigned int, FASTLSTM_SIM_LESS, FASTLSTM_SIM_MORE)
FASTLSTM_SIM_MIN_MAX(float, float, float, ::fminf, ::fmaxf)
FASTLSTM_SIM_MIN_MAX(double, double, double, ::fmin, ::fmax)
FASTLSTM_SIM_MIN_MAX(float, double, double, ::fmin, ::fmax)
FASTLSTM_SIM_MIN_MAX(double, float, double, ::fmin, ::fmax)
#undef FASTLSTM_SIM_INTEGER_MIN_MAX
#undef FASTLSTM_SIM_MIN_MAX
#undef FASTLSTM_SIM_LESS
#undef FASTLSTM_SIM_MORE

namespace cooperative_groups {

class thread_block {
 public:
  void sync(FASTLSTM_SIM_CALL_SITE) const {
    ::fastlstm::sim::detail::sync_block(FASTLSTM_SIM_WHERE);
  }
  unsigned thread_rank() const {
    return (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  }
  unsigned size() const { return num_threads(); }
  unsigned num_threads() const { return blockDim.x * blockDim.y * blockDim.z; }
};

class grid_group {
 public:
  void sync(FASTLSTM_SIM_CALL_SITE) const {
    ::fastlstm::sim::detail::sync_grid(FASTLSTM_SIM_WHERE);
  }
  unsigned long long thread_rank() const {
    const unsigned long long block =
        (blockIdx.z * 1ull * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    return block * thread_block().num_threads() + thread_block().thread_rank();
  }
  unsigned long long size() const { return num_threads(); }
  unsigned long long num_threads() const {
    return 1ull * gridDim.x * gridDim.y * gridDim.z * thread_block().num_threads();
  }
};

inline thread_block this_thread_block() { return {}; }
inline grid_group this_grid() { return {}; }

template <typename Group>
void sync(const Group& group) {
  group.sync();
}

}  // namespace cooperative_groups
