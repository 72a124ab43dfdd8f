// Runtime of the CPU SIMT emulator (see cuda_sim.h): fiber contexts and
// stacks, the per-block scheduler with its barriers and warp collectives,
// and cooperative grids (one OS thread per block, taking turns at grid
// barriers and __nanosleep()), with the checks of atomic publish/observe.
#include "cuda_sim.h"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

// A hand-written stack switch on x86-64: glibc's swapcontext also saves and
// restores the signal mask, a system call per switch that made barriers 8x
// slower. Elsewhere (or with -DFASTLSTM_SIM_UCONTEXT) ucontext.
#if defined(__x86_64__) && !defined(FASTLSTM_SIM_UCONTEXT)
#define FASTLSTM_SIM_STACK_SWITCH 1
#else
#include <ucontext.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define FASTLSTM_SIM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FASTLSTM_SIM_ASAN 1
#endif
#endif
#ifdef FASTLSTM_SIM_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#ifdef FASTLSTM_SIM_STACK_SWITCH
// Pushes the callee-saved registers, stores the stack pointer in *save, loads
// `load` and pops the registers saved there. Everything else is
// caller-saved, so the compiler has spilled it around the call; MXCSR and the
// x87 control word are left alone: all fibers share the OS thread's.
extern "C" void fastlstm_sim_switch_stack(void** save, void* load);
asm(R"(
    .pushsection .text
    .globl fastlstm_sim_switch_stack
    .hidden fastlstm_sim_switch_stack
    .type fastlstm_sim_switch_stack, @function
    .p2align 4
fastlstm_sim_switch_stack:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size fastlstm_sim_switch_stack, .-fastlstm_sim_switch_stack
    .popsection
)");
#endif

namespace fastlstm::sim {
namespace detail {
namespace {

constexpr unsigned kWarpSize = 32;
constexpr unsigned kMaxThreadsPerBlock = 1024;
constexpr size_t kMaxDynamicSharedBytes = 227 * 1024;  // H100's opt-in maximum
constexpr uint64_t kMaxBlocks = uint64_t(1) << 24;
constexpr uint64_t kMaxCooperativeBlocks = 1024;  // each is an OS thread
// More than WMMA's 32 bytes, so that tiles at such offsets in dynamic shared
// memory pass its alignment check.
constexpr size_t kDynamicSharedAlignment = 128;

std::mutex options_mutex;
Options current_options;
std::atomic<uint64_t> launches_since_options{0};

// ---- Error messages ---------------------------------------------------------

std::string dims(uint3 v) {
  return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
}

std::string site(Where where) {
  const char* slash = std::strrchr(where.file, '/');
  return std::string(slash ? slash + 1 : where.file) + ":" + std::to_string(where.line);
}

std::string hex(unsigned mask) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", mask);
  return text;
}

template <typename... Parts>
std::string message(const Parts&... parts) {
  std::ostringstream text;
  text << "fastlstm::sim: ";
  (text << ... << parts);
  return text.str();
}

template <typename... Parts>
SimError sim_error(const Parts&... parts) {
  return SimError(message(parts...));
}

// The thread ranks of a warp's lanes in `mask`, as "0-15,17".
std::string ranks_of(unsigned mask, unsigned first_rank) {
  std::string out;
  while (mask) {
    const unsigned from = __builtin_ctz(mask), run = mask >> from;
    const unsigned to = from + (~run ? __builtin_ctz(~run) : 32) - 1;
    out += (out.empty() ? "" : ",") + std::to_string(first_rank + from);
    if (to > from) out += "-" + std::to_string(first_rank + to);
    mask = to == 31 ? 0 : mask & (~0u << (to + 1));
  }
  return out;
}

const char* collective_name(Collective kind) {
  static const char* const names[] = {"__syncwarp",       "__shfl_sync",     "__shfl_up_sync",
                                      "__shfl_down_sync", "__shfl_xor_sync", "__ballot_sync",
                                      "__all_sync",       "__any_sync",      "a warp operation"};
  return names[static_cast<int>(kind)];
}

// A warp operation's mask is always the full warp: its name says enough.
std::string call_text(Collective kind, const WarpOperation* operation, unsigned mask, Where where) {
  if (operation) return std::string(operation->name) + " at " + site(where);
  return std::string(collective_name(kind)) + "(mask " + hex(mask) + ") at " + site(where);
}

uint3 unflatten(uint64_t rank, dim3 d) {
  return {unsigned(rank % d.x), unsigned(rank / d.x % d.y), unsigned(rank / d.x / d.y)};
}

// The random orders of one launch: distinct per (seed, launch, block).
std::mt19937_64 order_rng(uint64_t seed, uint64_t launch, uint64_t block) {
  std::seed_seq sequence{uint32_t(seed), uint32_t(seed >> 32), uint32_t(launch), uint32_t(block)};
  return std::mt19937_64(sequence);
}

// ---- Fiber stacks and contexts ----------------------------------------------

size_t page_bytes() {
  static const size_t bytes = size_t(sysconf(_SC_PAGESIZE));
  return bytes;
}

class FiberStack {
 public:
  explicit FiberStack(size_t bytes) : size_(bytes) {
    void* mapping = mmap(nullptr, size_ + page_bytes(), PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mapping == MAP_FAILED) throw sim_error("cannot map a fiber stack (too many threads?)");
    guard_ = static_cast<char*>(mapping);
    mprotect(guard_, page_bytes(), PROT_NONE);  // an overflow faults instead of corrupting
  }
  ~FiberStack() { munmap(guard_, size_ + page_bytes()); }
  FiberStack(const FiberStack&) = delete;
  FiberStack& operator=(const FiberStack&) = delete;
  char* bottom() const { return guard_ + page_bytes(); }
  size_t size() const { return size_; }

 private:
  char* guard_;
  size_t size_;
};

struct Context {
#ifdef FASTLSTM_SIM_STACK_SWITCH
  void* stack_pointer = nullptr;
#else
  ucontext_t state{};
#endif
  const void* stack_bottom = nullptr;  // the stack's extent, which ASan needs at a switch
  size_t stack_size = 0;
};

void start_context(Context& context, const FiberStack& stack, void (*entry)()) {
#ifdef FASTLSTM_SIM_ASAN
  // A fiber abandoned by a failed launch left its frames' redzones poisoned.
  __asan_unpoison_memory_region(stack.bottom(), stack.size());
#endif
#ifdef FASTLSTM_SIM_STACK_SWITCH
  // What fastlstm_sim_switch_stack pops: six registers and the return
  // address (entry), above which a null return address aligns entry's frame
  // as after a call and ends backtraces.
  void** top = reinterpret_cast<void**>(stack.bottom() + stack.size());
  std::fill(top - 8, top, nullptr);
  top[-2] = reinterpret_cast<void*>(entry);
  context.stack_pointer = top - 8;
#else
  getcontext(&context.state);
  context.state.uc_stack.ss_sp = stack.bottom();
  context.state.uc_stack.ss_size = stack.size();
  context.state.uc_link = nullptr;
  makecontext(&context.state, entry, 0);
#endif
  context.stack_bottom = stack.bottom();
  context.stack_size = stack.size();
}

// `from_finished`: the context being left never runs again.
void switch_context(Context& from, Context& to, bool from_finished) {
#ifdef FASTLSTM_SIM_ASAN
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(from_finished ? nullptr : &fake_stack, to.stack_bottom,
                                 to.stack_size);
#else
  (void)from_finished;
#endif
#ifdef FASTLSTM_SIM_STACK_SWITCH
  fastlstm_sim_switch_stack(&from.stack_pointer, to.stack_pointer);
#else
  swapcontext(&from.state, &to.state);
#endif
#ifdef FASTLSTM_SIM_ASAN
  __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#endif
}

void describe_os_thread_stack(Context& context) {
#ifdef FASTLSTM_SIM_ASAN
  pthread_attr_t attributes;
  if (pthread_getattr_np(pthread_self(), &attributes) != 0) return;
  void* bottom = nullptr;
  pthread_attr_getstack(&attributes, &bottom, &context.stack_size);
  context.stack_bottom = bottom;
  pthread_attr_destroy(&attributes);
#else
  (void)context;
#endif
}

// ---- Launches and the grid barrier ------------------------------------------

struct LaunchPlan {
  dim3 grid, block;
  size_t dynamic_smem;
  KernelCall kernel;
  Options options;
  uint64_t serial;  // launches since set_options(): varies the random orders
  unsigned threads;
  uint64_t blocks;
};

// Thrown in a cooperative block when another block failed.
struct LaunchAborted {};

// Thrown inside the fibers of a failed block, so that each unwinds and ends
// (which also frees what ASan keeps per fiber) instead of being abandoned.
struct FiberUnwind {};

enum class Outcome { Returned, Threw, Unwound };

// The blocks of a cooperative launch take turns: one runs at a time, and
// hands the turn on only where it waits, at this_grid().sync() or at a
// __nanosleep() in a spin on memory that another block writes, to the next
// block that can run in the launch's order (forward, reverse, or seeded
// random). So cross-block protocols run in reproducible, adversarial orders,
// where a missing flag wait shows as a wrong result, and a wait that no block
// can end is reported instead of hanging. Once a block has exited, no grid
// barrier can complete.
class CooperativeScheduler {
 public:
  explicit CooperativeScheduler(const LaunchPlan& plan)
      : plan_(plan),
        watchdog_(std::min(plan.options.watchdog_seconds, 1e7)),
        state_(plan.blocks, State::Ready),
        sleep_site_(plan.blocks),
        order_(plan.blocks),
        position_(plan.blocks) {
    std::iota(order_.begin(), order_.end(), 0u);
    if (plan.options.order == Order::Reverse) std::reverse(order_.begin(), order_.end());
    if (plan.options.order == Order::Random) {
      rng_ = order_rng(plan.options.seed, plan.serial, ~0ull);
      std::shuffle(order_.begin(), order_.end(), rng_);
    }
    for (unsigned i = 0; i < order_.size(); ++i) position_[order_[i]] = i;
    give_turn_locked(order_.front());
  }

  // Each returns false when the launch failed instead (the block must end).
  bool start(unsigned block) {
    std::unique_lock<std::mutex> lock(mutex_);
    return await_turn(lock, block);
  }

  bool sync_grid(unsigned block, Where where) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (failed_) return false;
    state_[block] = State::AtGrid;
    if (at_grid_++ == 0) first_waiter_ = "block " + name(block) + " waits at this_grid().sync() at " +
                                         site(where);
    if (done_ > 0)
      fail_locked(message("deadlock: ", first_waiter_, " but block ", name(exited_block_),
                          " has exited; a grid barrier needs every block"));
    pass_turn_locked(block);
    return await_turn(lock, block);
  }

  // At __nanosleep(): the turn goes to the next block that can run (the same
  // one where no other can). Turns passed this way with nothing published in
  // between mean that every block waits for something no block will do.
  bool yield(unsigned block, Where where) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (failed_) return false;
    state_[block] = State::Sleeping;
    sleep_site_[block] = where;
    const uint64_t published = published_.load();
    idle_turns_ = published == published_seen_ ? idle_turns_ + 1 : 0;
    published_seen_ = published;
    if (idle_turns_ > 4 * plan_.blocks + 64) fail_locked(spin_deadlock());
    pass_turn_locked(block);
    return await_turn(lock, block);
  }

  void block_done(unsigned block, bool exited) {
    std::lock_guard<std::mutex> lock(mutex_);
    state_[block] = State::Done;
    ++done_;
    if (exited && exited_block_ < 0) exited_block_ = int(block);
    if (exited && at_grid_ > 0)
      fail_locked(message("deadlock: block ", name(block), " exited while ", first_waiter_,
                          "; a grid barrier needs every block"));
    if (running_ == int(block)) pass_turn_locked(block);
    changed_.notify_all();
  }

  void fail(const std::string& reason) {
    std::lock_guard<std::mutex> lock(mutex_);
    fail_locked(reason);
  }

  // An atomic store, read-modify-write or fence by the running block.
  void note_publish() { published_.fetch_add(1); }

  // Waits for every block; the failure's message, or "" on success. A block
  // still running after the watchdog failed the launch (spinning on memory
  // without __nanosleep) ends the process: hanging a test suite is worse.
  std::string wait_for_blocks() {
    std::unique_lock<std::mutex> lock(mutex_);
    bool watchdog_fired = false;
    while (done_ < plan_.blocks) {
      if (changed_.wait_until(lock, last_turn_ + watchdog_) != std::cv_status::timeout ||
          std::chrono::steady_clock::now() < last_turn_ + watchdog_)
        continue;
      if (watchdog_fired) {
        std::fprintf(stderr, "%s\nfastlstm::sim: blocks still running; aborting\n",
                     failure_.c_str());
        std::abort();
      }
      watchdog_fired = true;
      fail_locked(message("watchdog: no block of a cooperative launch handed its turn on for ",
                          watchdog_.count(), " s (", at_grid_, " blocks at this_grid().sync(), ",
                          done_, " of ", plan_.blocks,
                          " done); does a block spin without __nanosleep()?"));
      last_turn_ = std::chrono::steady_clock::now();
    }
    return failed_ ? failure_ : std::string();
  }

 private:
  enum class State : uint8_t { Ready, Running, AtGrid, Sleeping, Done };

  std::string name(unsigned block) const { return dims(unflatten(block, plan_.grid)); }

  static bool runnable(State s) { return s == State::Ready || s == State::Sleeping; }

  bool await_turn(std::unique_lock<std::mutex>& lock, unsigned block) {
    changed_.wait(lock, [&] { return running_ == int(block) || failed_; });
    return !failed_;
  }

  void give_turn_locked(unsigned block) {
    running_ = int(block);
    state_[block] = State::Running;
    last_turn_ = std::chrono::steady_clock::now();
    changed_.notify_all();
  }

  // The next runnable block after `from` in the order; with none, the grid
  // barrier completes if every block still running has reached it.
  void pass_turn_locked(unsigned from) {
    running_ = -1;
    if (failed_) return changed_.notify_all();
    if (const int next = next_runnable(position_[from] + 1); next >= 0) return give_turn_locked(next);
    if (at_grid_ == 0 || at_grid_ + done_ != plan_.blocks) return changed_.notify_all();
    for (State& s : state_)
      if (s == State::AtGrid) s = State::Ready;
    at_grid_ = 0;
    note_publish();
    give_turn_locked(unsigned(next_runnable(0)));
  }

  int next_runnable(size_t start) {
    if (plan_.options.order == Order::Random) {
      std::vector<unsigned> candidates;
      for (unsigned b = 0; b < state_.size(); ++b)
        if (runnable(state_[b])) candidates.push_back(b);
      if (candidates.empty()) return -1;
      return int(candidates[std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(rng_)]);
    }
    for (size_t i = 0; i < order_.size(); ++i) {
      const unsigned b = order_[(start + i) % order_.size()];
      if (runnable(state_[b])) return int(b);
    }
    return -1;
  }

  std::string spin_deadlock() const {
    std::ostringstream out;
    out << "deadlock: every block of a cooperative launch waits, and none publishes anything";
    for (unsigned b = 0; b < state_.size(); ++b) {
      if (state_[b] == State::Sleeping) out << "\n  block " << name(b) << ": spins at __nanosleep() at " << site(sleep_site_[b]);
      if (state_[b] == State::AtGrid) out << "\n  block " << name(b) << ": waits at this_grid().sync()";
      if (state_[b] == State::Done) out << "\n  block " << name(b) << ": done";
    }
    return out.str();
  }

  void fail_locked(const std::string& reason) {
    if (!failed_) failure_ = reason;
    failed_ = true;
    changed_.notify_all();
  }

  const LaunchPlan& plan_;
  const std::chrono::duration<double> watchdog_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<State> state_;
  std::vector<Where> sleep_site_;
  std::vector<unsigned> order_, position_;
  std::mt19937_64 rng_;
  int running_ = -1, exited_block_ = -1;
  uint64_t at_grid_ = 0, done_ = 0, idle_turns_ = 0, published_seen_ = 0;
  std::atomic<uint64_t> published_{0};
  std::string first_waiter_, failure_;
  bool failed_ = false;
  std::chrono::steady_clock::time_point last_turn_ = std::chrono::steady_clock::now();
};

// ---- The block scheduler ----------------------------------------------------

enum class Wait : uint8_t { None, Block, Warp, Grid, Sleep, Exited };

// An atomic load without acquire order that saw another block's store.
struct Unacquired {
  bool pending = false;
  Where where{};
  unsigned publisher = 0;
};

// Who last stored to an address atomically, in this launch.
struct Publication {
  unsigned block;  // flattened
  Where where;
  bool released;
};

std::mutex publications_mutex;
std::unordered_map<const void*, Publication> publications;

void record_publication(const void* address, const Publication& p) {
  std::lock_guard<std::mutex> lock(publications_mutex);
  publications[address] = p;
}

std::optional<Publication> publication_of(const void* address) {
  std::lock_guard<std::mutex> lock(publications_mutex);
  const auto found = publications.find(address);
  if (found == publications.end()) return std::nullopt;
  return found->second;
}

void forget_publications() {
  std::lock_guard<std::mutex> lock(publications_mutex);
  publications.clear();
}

struct CollectiveCall {
  Collective kind;
  unsigned mask;
  uint32_t lane_arg;  // a shuffle's source lane, delta or lane mask
  int width;
  uint64_t value;                            // a warp operation's: its lane argument
  const WarpOperation* operation = nullptr;  // for Collective::WarpOperation
};

struct Fiber {
  Context context;
  ThreadCoords coords{};
  unsigned rank = 0;  // linear index in the block
  bool started = false;
  Wait wait = Wait::None;
  Where where{};
  CollectiveCall call{};
  uint64_t result = 0;  // per lane: a fast lane may enter the next collective first
  bool fenced = false;  // a __threadfence() since the thread last passed a barrier
  Unacquired unacquired;
};

// A warp collective that some of the lanes of its mask have reached.
struct PendingCollective {
  Collective kind;
  unsigned mask, arrived;
  Where where;
  const WarpOperation* operation;
};

struct Warp {
  unsigned first_rank;
  unsigned present;  // lanes that exist (the last warp may be partial)
  unsigned exited;
  std::vector<PendingCollective> pending;  // disjoint masks
};

bool is_shuffle(Collective kind) { return kind >= Collective::Shfl && kind <= Collective::ShflXor; }

// PTX's shfl.sync source lane (CUDA passes c = ((32 - width) << 8) | clamp);
// a source outside the lane's segment means the lane keeps its own value.
unsigned shuffle_source(Collective kind, unsigned lane, uint32_t lane_arg, int width) {
  const unsigned b = lane_arg & 31, segmask = unsigned(32 - width) & 31;
  const unsigned clamp = kind == Collective::ShflUp ? 0 : 31;
  const unsigned min_lane = lane & segmask, max_lane = min_lane | (clamp & ~segmask);
  switch (kind) {
    case Collective::ShflUp: return int(lane - b) >= int(max_lane) ? lane - b : lane;
    case Collective::ShflDown: return lane + b <= max_lane ? lane + b : lane;
    case Collective::ShflXor: return (lane ^ b) <= max_lane ? lane ^ b : lane;
    default: return min_lane | (b & ~segmask);
  }
}

class BlockScheduler;
thread_local BlockScheduler* active_scheduler = nullptr;  // while a block runs here

void fiber_main();

class BlockScheduler {
 public:
  // Runs one block to completion. Throws SimError, or LaunchAborted when
  // another block of the cooperative launch failed.
  void run(const LaunchPlan& plan, unsigned block, CooperativeScheduler* grid) {
    prepare(plan, block, grid);
    struct Activation {
      explicit Activation(BlockScheduler* s) { active_scheduler = s; }
      ~Activation() {
        active_scheduler = nullptr;
        current_coords = nullptr;
      }
    } activation(this);
    if (grid_ && !grid_->start(block)) fail(LaunchAborted{});
    for (;;) {
      if (Fiber* first = next_runnable()) resume_from_home(*first);
      // Back here when no fiber can run.
      if (!failure_.empty()) fail(SimError(failure_));
      if (exited_ == fibers_.size()) return;
      if (!sleepers_.empty()) {
        wake_sleepers(block);
        continue;
      }
      if (!grid_ || at_grid_ == 0 || at_grid_ + exited_ != fibers_.size()) fail(deadlock_report());
      if (!grid_->sync_grid(block, grid_site())) fail(LaunchAborted{});
      release_all(Wait::Grid);
      at_grid_ = 0;
    }
  }

  // __nanosleep(): the thread waits for something another thread writes.
  void sleep(Where where) {
    Fiber& self = wait_here(Wait::Sleep, where);
    sleepers_.push_back(&self);
    suspend(self);
  }

  // An atomic store or read-modify-write (release: with release order, or
  // after a __threadfence() since the thread last passed a barrier).
  void note_publish(const void* address, bool release, Where where) {
    ++published_;
    if (grid_) grid_->note_publish();
    record_publication(address, {block_, where, release || running_->fenced});
  }

  // An atomic load that saw `address`; without acquire order it must be
  // followed by a __threadfence() before the thread passes a barrier.
  void note_observe(const void* address, bool acquire, Where where) {
    const std::optional<Publication> by = publication_of(address);
    if (!by || by->block == block_) return;
    if (!by->released)
      throw sim_error("thread ", running_->rank, " of block ", dims(running_->coords.block_idx),
                      " reads at ", site(where), " a value that block ",
                      dims(unflatten(by->block, plan_->grid)), " stored at ", site(by->where),
                      " without release order or a __threadfence() after its last barrier: the "
                      "data it guards may not be visible (missing fence)");
    if (!acquire) running_->unacquired = {true, where, by->block};
  }

  void thread_fence() {
    running_->fenced = true;
    running_->unacquired.pending = false;
    if (grid_) grid_->note_publish();
  }

  void sync_block(Where where) {
    check_acquired(where, "__syncthreads()");
    running_->fenced = false;
    Fiber& self = wait_here(Wait::Block, where);
    ++at_block_;
    release_block_barrier_if_complete();
    suspend(self);
  }

  void sync_grid(Where where) {
    if (!grid_)
      throw sim_error("this_grid().sync() at ", site(where),
                      " in a kernel started by launch(); grid barriers need launch_cooperative()");
    check_acquired(where, "this_grid().sync()");
    running_->fenced = false;
    Fiber& self = wait_here(Wait::Grid, where);
    ++at_grid_;
    suspend(self);
  }

  uint64_t warp_collective(const CollectiveCall& call, Where where) {
    Fiber& self = *running_;
    Warp& warp = warps_[self.rank / kWarpSize];
    check_collective(self, warp, call, where);
    PendingCollective& group = join_collective(warp, call, where);
    wait_here(Wait::Warp, where).call = call;
    group.arrived |= 1u << (self.rank % kWarpSize);
    if (group.arrived == group.mask) complete_collective(warp, group);
    suspend(self);
    return self.result;
  }

  unsigned active_mask() const {
    const Warp& warp = warps_[running_->rank / kWarpSize];
    return warp.present & ~warp.exited;
  }

  void* dynamic_shared() { return smem_.get(); }

  const KernelCall& kernel() const { return plan_->kernel; }

  void fiber_started() { running_->started = true; }

  [[noreturn]] void fiber_finished(Outcome outcome, std::string&& error) {
    Fiber& self = *running_;
    if (outcome == Outcome::Threw && failure_.empty()) {
      failure_ = (error.rfind("fastlstm::sim:", 0) == 0 ? "" : "fastlstm::sim: kernel threw: ") +
                 error + " [block " + dims(self.coords.block_idx) + ", thread " +
                 dims(self.coords.thread_idx) + "]";
    }
    std::string().swap(error);  // this frame is never unwound
    self.wait = Wait::Exited;
    if (outcome == Outcome::Returned) {
      ++exited_;
      warps_[self.rank / kWarpSize].exited |= 1u << (self.rank % kWarpSize);
      release_block_barrier_if_complete();
      suspend(self, true);
    } else {
      running_ = nullptr;
      switch_context(self.context, home_, true);
    }
    std::abort();  // nothing resumes a finished fiber
  }

 private:
  struct AlignedFree {
    void operator()(unsigned char* p) const {
      ::operator delete[](p, std::align_val_t(kDynamicSharedAlignment));
    }
  };

  // Thread 0 of a block often spins while the others wait at a barrier; its
  // sleeps hand the OS thread to the other blocks of a cooperative launch.
  // In a plain launch the other blocks run only after this one: a spin with
  // nothing of its own block able to end it is a deadlock.
  void wake_sleepers(unsigned block) {
    if (grid_) {
      if (!grid_->yield(block, sleepers_.front()->where)) fail(LaunchAborted{});
    } else {
      idle_wakes_ = published_ == published_at_wake_ ? idle_wakes_ + 1 : 0;
      published_at_wake_ = published_;
      if (idle_wakes_ > 1000)
        fail(sim_error("deadlock in block ", dims(fibers_[0].coords.block_idx), ": threads spin at "
                       "__nanosleep() at ", site(sleepers_.front()->where), " and nothing in the "
                       "block can end the wait; in a launch() (not cooperative) the other blocks "
                       "do not run meanwhile"));
    }
    for (Fiber* fiber : sleepers_) make_runnable(*fiber);
    sleepers_.clear();
  }

  void check_acquired(Where where, const char* barrier) const {
    const Fiber& self = *running_;
    if (!self.unacquired.pending) return;
    throw sim_error("thread ", self.rank, " of block ", dims(self.coords.block_idx), " reads at ",
                    site(self.unacquired.where), " a value that block ",
                    dims(unflatten(self.unacquired.publisher, plan_->grid)),
                    " published, with neither acquire order nor a __threadfence() before ",
                    barrier, " at ", site(where),
                    ": what that block wrote before may not be visible (missing acquire)");
  }

  void prepare(const LaunchPlan& plan, unsigned block, CooperativeScheduler* grid) {
    plan_ = &plan;
    grid_ = grid;
    block_ = block;
    sleepers_.clear();
    published_ = published_at_wake_ = idle_wakes_ = 0;
    const size_t page = page_bytes(),
                 stack_bytes = (plan.options.stack_bytes + page - 1) / page * page;
    if (!stacks_.empty() && stacks_.front()->size() != stack_bytes) stacks_.clear();
    while (stacks_.size() < plan.threads)
      stacks_.push_back(std::make_unique<FiberStack>(stack_bytes));
    fibers_.resize(plan.threads);
    round_.clear();
    const uint3 block_idx = unflatten(block, plan.grid);
    for (unsigned rank = 0; rank < plan.threads; ++rank) {
      Fiber& fiber = fibers_[rank];
      fiber.coords = {unflatten(rank, plan.block), block_idx, plan.block, plan.grid};
      fiber.rank = rank;
      fiber.started = false;
      fiber.wait = Wait::None;
      fiber.fenced = false;
      fiber.unacquired = {};
      start_context(fiber.context, *stacks_[rank], &fiber_main);
      round_.push_back(&fiber);
    }
    warps_.resize((plan.threads + kWarpSize - 1) / kWarpSize);
    for (unsigned w = 0; w < warps_.size(); ++w) {
      const unsigned lanes = std::min(kWarpSize, plan.threads - w * kWarpSize);
      warps_[w].first_rank = w * kWarpSize;
      warps_[w].present = lanes == kWarpSize ? ~0u : (1u << lanes) - 1;
      warps_[w].exited = 0;
      warps_[w].pending.clear();
    }
    at_block_ = at_grid_ = exited_ = 0;
    failure_.clear();
    if (plan.options.order == Order::Random)
      rng_ = order_rng(plan.options.seed, plan.serial, block);
    arrange(round_);
    cursor_ = 0;
    next_round_.clear();
    prepare_dynamic_shared(plan.dynamic_smem);
    if (!home_.stack_bottom) describe_os_thread_stack(home_);
  }

  // Exactly the launch's size, so that ASan builds catch overruns; 0xFF bytes
  // (NaN as float or double) make reads of never-written memory show.
  void prepare_dynamic_shared(size_t bytes) {
    if (!smem_ || smem_bytes_ != bytes) {
      const auto alignment = std::align_val_t(kDynamicSharedAlignment);
      smem_.reset(new (alignment) unsigned char[std::max<size_t>(bytes, 1)]);
      smem_bytes_ = bytes;
    }
    std::memset(smem_.get(), 0xFF, bytes);
  }

  // A round runs every fiber that became runnable during the previous one,
  // in the launch's order; each runs until it waits or exits.
  void arrange(std::vector<Fiber*>& round) {
    if (plan_->options.order == Order::Random)
      return std::shuffle(round.begin(), round.end(), rng_);
    // Barriers release fibers in rank order: a round is mostly sorted already.
    const auto by_rank = [](Fiber* a, Fiber* b) { return a->rank < b->rank; };
    if (!std::is_sorted(round.begin(), round.end(), by_rank))
      std::sort(round.begin(), round.end(), by_rank);
    if (plan_->options.order == Order::Reverse) std::reverse(round.begin(), round.end());
  }

  Fiber* next_runnable() {
    if (cursor_ == round_.size()) {
      if (next_round_.empty()) return nullptr;
      round_.swap(next_round_);
      next_round_.clear();
      arrange(round_);
      cursor_ = 0;
    }
    return round_[cursor_++];
  }

  Fiber& wait_here(Wait wait, Where where) {
    running_->wait = wait;
    running_->where = where;
    return *running_;
  }

  void make_runnable(Fiber& fiber) {
    fiber.wait = Wait::None;
    next_round_.push_back(&fiber);
  }

  template <typename Error>
  [[noreturn]] void fail(const Error& error) {
    unwinding_ = true;
    for (Fiber& fiber : fibers_)
      if (fiber.started && fiber.wait != Wait::Exited) resume_from_home(fiber);
    unwinding_ = false;
    throw error;
  }

  void resume_from_home(Fiber& fiber) {
    running_ = &fiber;
    current_coords = &fiber.coords;
    switch_context(home_, fiber.context, false);
  }

  // Hands the OS thread to the next runnable fiber, or back to run() when
  // there is none; returns when `self` is resumed.
  void suspend(Fiber& self, bool finished = false) {
    Fiber* next = next_runnable();
    if (next == &self) return;
    running_ = next;
    current_coords = next ? &next->coords : nullptr;
    switch_context(self.context, next ? next->context : home_, finished);
    if (unwinding_) throw FiberUnwind{};
  }

  // Exited threads count as arrived, as on the hardware.
  void release_block_barrier_if_complete() {
    if (at_block_ == 0 || at_block_ + exited_ != fibers_.size()) return;
    at_block_ = 0;
    release_all(Wait::Block);
  }

  void release_all(Wait wait) {
    for (Fiber& fiber : fibers_)
      if (fiber.wait == wait) make_runnable(fiber);
  }

  Where grid_site() const {
    for (const Fiber& fiber : fibers_)
      if (fiber.wait == Wait::Grid) return fiber.where;
    return {"?", 0};
  }

  // The messages are built only on failure: this runs at every collective.
  void check_collective(const Fiber& self, const Warp& warp, const CollectiveCall& call,
                        Where where) const {
    const unsigned lane = self.rank % kWarpSize;
    const auto call_site = [&] { return call_text(call.kind, call.operation, call.mask, where); };
    if (call.operation && warp.present != ~0u)
      throw sim_error(call_site(), ": needs a full warp of 32 threads, but warp ",
                      self.rank / kWarpSize, " of a ", fibers_.size(),
                      "-thread block has only lanes ", hex(warp.present));
    if (!(call.mask >> lane & 1))
      throw sim_error(call_site(), ": the calling thread ", self.rank, " (lane ", lane,
                      ") is not in the mask");
    if (call.mask & ~warp.present)
      throw sim_error(call_site(), ": the mask names lanes that do not exist: warp ",
                      self.rank / kWarpSize, " of a ", fibers_.size(), "-thread block has lanes ",
                      hex(warp.present));
    const bool valid_width =
        call.width >= 1 && call.width <= 32 && !(call.width & (call.width - 1));
    if (is_shuffle(call.kind) && !valid_width)
      throw sim_error(call_site(), ": width ", call.width, " is not a power of 2 between 1 and 32");
  }

  // The pending collective the caller's mask belongs to, or a new one; a
  // pending one with an overlapping but different mask, or another kind of
  // collective, is misuse.
  PendingCollective& join_collective(Warp& warp, const CollectiveCall& call, Where where) {
    for (PendingCollective& group : warp.pending) {
      if (!(group.mask & call.mask)) continue;
      if (group.mask == call.mask && group.kind == call.kind && group.operation == call.operation)
        return group;
      const bool same_name = group.operation && call.operation &&
                             std::strcmp(group.operation->name, call.operation->name) == 0;
      throw sim_error("thread ", running_->rank, " calls ",
                      call_text(call.kind, call.operation, call.mask, where),
                      same_name ? " (on another type of fragment)" : "", " while threads ",
                      ranks_of(group.arrived, warp.first_rank), " wait at ",
                      call_text(group.kind, group.operation, group.mask, group.where),
                      ": the lanes named in a mask must all make the same call with the same mask");
    }
    warp.pending.push_back({call.kind, call.mask, 0, where, call.operation});
    return warp.pending.back();
  }

  // Computes every lane's result before any lane runs on.
  void complete_collective(Warp& warp, const PendingCollective& pending) {
    if (pending.operation) run_warp_operation(warp, pending);
    const PendingCollective group = pending;
    warp.pending.erase(warp.pending.begin() + (&pending - warp.pending.data()));
    unsigned votes = 0;
    for (unsigned bits = group.mask; bits; bits &= bits - 1)
      if (lane_fiber(warp, __builtin_ctz(bits)).call.value) votes |= 1u << __builtin_ctz(bits);
    for (unsigned bits = group.mask; bits; bits &= bits - 1) {
      Fiber& fiber = lane_fiber(warp, __builtin_ctz(bits));
      switch (group.kind) {
        case Collective::SyncWarp:
        case Collective::WarpOperation: fiber.result = 0; break;
        case Collective::Ballot: fiber.result = votes; break;
        case Collective::All: fiber.result = votes == group.mask; break;
        case Collective::Any: fiber.result = votes != 0; break;
        default: fiber.result = lane_fiber(warp, source_lane(group, fiber)).call.value;
      }
    }
    for (unsigned bits = group.mask; bits; bits &= bits - 1)
      make_runnable(lane_fiber(warp, __builtin_ctz(bits)));
  }

  Fiber& lane_fiber(const Warp& warp, unsigned lane) { return fibers_[warp.first_rank + lane]; }

  // In the last lane to arrive: the others wait, their arguments alive on
  // their stacks, and go on only if this returns.
  void run_warp_operation(const Warp& warp, const PendingCollective& group) {
    void* lane_args[kWarpSize];
    for (unsigned lane = 0; lane < kWarpSize; ++lane)
      lane_args[lane] = reinterpret_cast<void*>(uintptr_t(lane_fiber(warp, lane).call.value));
    const std::string error = group.operation->run(lane_args);
    if (!error.empty())
      throw sim_error(call_text(group.kind, group.operation, group.mask, group.where), " (warp ",
                      warp.first_rank / kWarpSize, "): ", error);
  }

  unsigned source_lane(const PendingCollective& group, const Fiber& fiber) const {
    const unsigned lane = fiber.rank % kWarpSize;
    const unsigned source = shuffle_source(group.kind, lane, fiber.call.lane_arg, fiber.call.width);
    if (source != lane && !(group.mask >> source & 1))
      throw sim_error(call_text(group.kind, group.operation, group.mask, group.where), ": thread ",
                      fiber.rank, " (lane ", lane, ") reads lane ", source,
                      ", which is not in the mask (undefined on a GPU)");
    return source;
  }

  std::string describe_wait(const Fiber& fiber) const {
    switch (fiber.wait) {
      case Wait::None: return "runnable";
      case Wait::Exited: return "exited";
      case Wait::Block: return "wait at __syncthreads() at " + site(fiber.where);
      case Wait::Grid: return "wait at this_grid().sync() at " + site(fiber.where);
      case Wait::Sleep: return "sleep at __nanosleep() at " + site(fiber.where);
      case Wait::Warp: break;
    }
    const Warp& warp = warps_[fiber.rank / kWarpSize];
    for (const PendingCollective& group : warp.pending)
      if (group.mask >> (fiber.rank % kWarpSize) & 1)
        return "wait at " + call_text(group.kind, group.operation, group.mask, group.where) +
               " for threads " + ranks_of(group.mask & ~group.arrived, warp.first_rank);
    return "wait at a warp collective";
  }

  // Threads with the same wait, in runs of consecutive ranks.
  SimError deadlock_report() const {
    std::ostringstream out;
    out << "deadlock in block " << dims(fibers_[0].coords.block_idx) << " (" << fibers_.size()
        << " threads): no thread can continue";
    for (size_t first = 0, lines = 0; first < fibers_.size(); ++lines) {
      const std::string wait = describe_wait(fibers_[first]);
      size_t last = first;
      while (last + 1 < fibers_.size() && describe_wait(fibers_[last + 1]) == wait) ++last;
      if (lines == 16) {
        out << "\n  ...";
        break;
      }
      out << "\n  thread" << (last > first ? "s " : " ") << first;
      if (last > first) out << "-" << last;
      out << ": " << wait;
      first = last + 1;
    }
    return sim_error(out.str());
  }

  const LaunchPlan* plan_ = nullptr;
  CooperativeScheduler* grid_ = nullptr;
  unsigned block_ = 0;  // flattened
  std::vector<Fiber*> sleepers_;
  uint64_t published_ = 0, published_at_wake_ = 0, idle_wakes_ = 0;
  std::vector<std::unique_ptr<FiberStack>> stacks_;  // reused by every launch on this OS thread
  std::vector<Fiber> fibers_;
  std::vector<Warp> warps_;
  std::vector<Fiber*> round_, next_round_;
  size_t cursor_ = 0;
  size_t at_block_ = 0, at_grid_ = 0, exited_ = 0;
  Fiber* running_ = nullptr;
  bool unwinding_ = false;
  Context home_;  // run()'s, on the OS thread's own stack
  std::string failure_;
  std::mt19937_64 rng_;
  std::unique_ptr<unsigned char[], AlignedFree> smem_;
  size_t smem_bytes_ = 0;
};

BlockScheduler& this_thread_scheduler() {
  thread_local BlockScheduler scheduler;
  return scheduler;
}

// Exceptions must not unwind past the fiber's first frame: they become a
// failure of the launch, rethrown by run() on the OS thread's own stack.
void fiber_main() {
#ifdef FASTLSTM_SIM_ASAN
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
  BlockScheduler& scheduler = *active_scheduler;
  scheduler.fiber_started();
  Outcome outcome = Outcome::Threw;
  std::string error;
  try {
    scheduler.kernel().invoke(scheduler.kernel().bound);
    outcome = Outcome::Returned;
  } catch (const FiberUnwind&) {
    outcome = Outcome::Unwound;
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "an exception not derived from std::exception";
  }
  scheduler.fiber_finished(outcome, std::move(error));
}

BlockScheduler& scheduler_in_kernel(const char* what) {
  if (!active_scheduler) throw sim_error(what, " called outside a kernel");
  return *active_scheduler;
}

// ---- Cooperative launches: a persistent pool of OS threads ------------------

// Cooperative blocks run on these threads, so that their fiber stacks, like
// the calling thread's, are mapped once and reused. Never destroyed: the
// threads wait on it until the process exits.
class WorkerPool {
 public:
  static WorkerPool& instance() {
    static WorkerPool* pool = new WorkerPool;
    return *pool;
  }

  // Runs task(0) ... task(count - 1) at once, each on its own thread.
  void start(unsigned count, std::function<void(unsigned)> task) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (; threads_ < count; ++threads_)
      std::thread(&WorkerPool::serve, this, generation_).detach();
    task_ = std::move(task);
    count_ = count;
    next_ = 0;
    ++generation_;
    work_.notify_all();
  }

 private:
  void serve(uint64_t seen) {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      work_.wait(lock, [&] { return generation_ != seen; });
      seen = generation_;
      if (next_ == count_) continue;
      const unsigned index = next_++;
      const std::function<void(unsigned)> task = task_;  // start() may replace task_ meanwhile
      lock.unlock();
      task(index);
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable work_;
  std::function<void(unsigned)> task_;
  unsigned count_ = 0, next_ = 0, threads_ = 0;
  uint64_t generation_ = 0;
};

void run_cooperative(const LaunchPlan& plan) {
  static std::mutex one_at_a_time;  // the pool serves one grid at a time
  std::lock_guard<std::mutex> lock(one_at_a_time);
  CooperativeScheduler grid(plan);
  WorkerPool::instance().start(unsigned(plan.blocks), [&plan, &grid](unsigned block) {
    bool exited = false;
    try {
      this_thread_scheduler().run(plan, block, &grid);
      exited = true;
    } catch (const LaunchAborted&) {
    } catch (const std::exception& e) {
      grid.fail(e.what());
    }
    grid.block_done(block, exited);  // the caller may return from here on
  });
  const std::string failure = grid.wait_for_blocks();
  if (!failure.empty()) throw SimError(failure);
}

void run_in_order(const LaunchPlan& plan) {
  std::vector<unsigned> order(plan.blocks);
  std::iota(order.begin(), order.end(), 0u);
  if (plan.options.order == Order::Reverse) std::reverse(order.begin(), order.end());
  if (plan.options.order == Order::Random) {
    std::mt19937_64 rng = order_rng(plan.options.seed, plan.serial, ~0ull);
    std::shuffle(order.begin(), order.end(), rng);
  }
  BlockScheduler& scheduler = this_thread_scheduler();
  for (unsigned block : order) scheduler.run(plan, block, nullptr);
}

void validate_launch(dim3 grid, dim3 block, size_t dynamic_smem, bool cooperative) {
  const std::string launch = std::string("invalid ") + (cooperative ? "cooperative " : "") +
                             "launch: grid " + dims(grid) + ", block " + dims(block) + ": ";
  if (!grid.x || !grid.y || !grid.z || !block.x || !block.y || !block.z)
    throw sim_error(launch, "every dimension must be at least 1");
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (threads > kMaxThreadsPerBlock || block.z > 64)
    throw sim_error(launch, threads, " threads per block; at most ", kMaxThreadsPerBlock,
                    " (and block.z at most 64)");
  if (grid.y > 65535 || grid.z > 65535 || grid.x > 0x7fffffffu)
    throw sim_error(launch, "grid dimensions beyond CUDA's limits");
  const uint64_t blocks = uint64_t(grid.x) * grid.y * grid.z;
  const uint64_t max_blocks = cooperative ? kMaxCooperativeBlocks : kMaxBlocks;
  if (blocks > max_blocks)
    throw sim_error(launch, blocks, " blocks; the emulator runs at most ", max_blocks);
  if (dynamic_smem > kMaxDynamicSharedBytes)
    throw sim_error(launch, dynamic_smem, " bytes of dynamic shared memory; at most ",
                    kMaxDynamicSharedBytes);
}

}  // namespace

void run_launch(dim3 grid, dim3 block, size_t dynamic_smem, bool cooperative, KernelCall call) {
  if (active_scheduler) throw sim_error("launches from inside a kernel are not supported");
  validate_launch(grid, block, dynamic_smem, cooperative);
  const LaunchPlan plan{grid,
                        block,
                        dynamic_smem,
                        call,
                        options(),
                        launches_since_options++,
                        block.x * block.y * block.z,
                        uint64_t(grid.x) * grid.y * grid.z};
  forget_publications();
  try {
    cooperative ? run_cooperative(plan) : run_in_order(plan);
  } catch (const std::system_error& e) {  // no more threads
    throw sim_error("launch failed: ", e.what());
  }
}

void sync_block(Where where) { scheduler_in_kernel("__syncthreads()").sync_block(where); }

void sync_grid(Where where) { scheduler_in_kernel("this_grid().sync()").sync_grid(where); }

uint64_t warp_collective(Collective kind, unsigned mask, uint64_t value, uint32_t lane_arg,
                         int width, Where where) {
  return scheduler_in_kernel(collective_name(kind))
      .warp_collective({kind, mask, lane_arg, width, value}, where);
}

unsigned active_mask() { return scheduler_in_kernel("__activemask()").active_mask(); }

void sleep(Where where) { scheduler_in_kernel("__nanosleep()").sleep(where); }

void thread_fence() { scheduler_in_kernel("__threadfence()").thread_fence(); }

void atomic_published(const void* address, bool release, Where where) {
  scheduler_in_kernel("an atomic store").note_publish(address, release, where);
}

void atomic_observed(const void* address, bool acquire, Where where) {
  scheduler_in_kernel("an atomic load").note_observe(address, acquire, where);
}

void warp_operation(const WarpOperation& operation, void* lane_arg, Where where) {
  CollectiveCall call{Collective::WarpOperation, ~0u, 0, int(kWarpSize),
                      uint64_t(uintptr_t(lane_arg))};
  call.operation = &operation;
  scheduler_in_kernel(operation.name).warp_collective(call, where);
}

}  // namespace detail

void set_options(const Options& options) {
  if (!(options.watchdog_seconds > 0)) throw detail::sim_error("watchdog_seconds must be positive");
  if (options.stack_bytes < 16 * 1024)
    throw detail::sim_error("stack_bytes must be at least 16 KiB");
  std::lock_guard<std::mutex> lock(detail::options_mutex);
  detail::current_options = options;
  detail::launches_since_options = 0;
}

Options options() {
  std::lock_guard<std::mutex> lock(detail::options_mutex);
  return detail::current_options;
}

void* dynamic_shared_memory() {
  return detail::scheduler_in_kernel("dynamic_shared_memory()").dynamic_shared();
}

}  // namespace fastlstm::sim
