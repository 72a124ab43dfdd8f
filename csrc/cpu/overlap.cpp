#include "overlap.h"

#include <atomic>
#include <memory>

#include "engine/team.h"

namespace fastlstm::cpu {
namespace {

struct Progress {
  explicit Progress(const std::vector<StageItem>& items, int64_t stages)
      : done(new std::atomic<bool>[items.size()]), left(new std::atomic<int64_t>[stages]) {
    for (size_t i = 0; i < items.size(); ++i) done[i].store(false, std::memory_order_relaxed);
    for (int64_t s = 0; s < stages; ++s) left[s].store(0, std::memory_order_relaxed);
    for (const StageItem& item : items) left[item.stage].fetch_add(1, std::memory_order_relaxed);
  }
  std::atomic<int64_t> recurred{0};  // stages of the recurrence done
  std::atomic<size_t> next{0};       // the next item to take
  std::unique_ptr<std::atomic<bool>[]> done;
  std::unique_ptr<std::atomic<int64_t>[]> left;  // items of each stage not yet done
};

void run_item(const std::vector<StageItem>& items, size_t i, Progress& p) {
  const StageItem& item = items[i];
  spin_until([&] { return p.recurred.load(std::memory_order_acquire) > item.stage; });
  if (item.after >= 0) {
    spin_until([&] { return p.done[item.after].load(std::memory_order_acquire); });
  }
  item.run();
  p.done[i].store(true, std::memory_order_release);
  p.left[item.stage].fetch_sub(1, std::memory_order_acq_rel);
}

void run_in_order(int64_t stages, const std::function<void(int64_t)>& recurrence,
                  const std::vector<StageItem>& items, Progress& p) {
  size_t i = 0;
  for (int64_t s = 0; s < stages; ++s) {
    recurrence(s);
    p.recurred.store(s + 1, std::memory_order_release);
    for (; i < items.size() && items[i].stage == s; ++i) run_item(items, i, p);
  }
}

}  // namespace

void run_overlapped(int threads, int64_t stages, int64_t slots,
                    const std::function<void(int64_t)>& recurrence,
                    const std::vector<StageItem>& items) {
  Progress p(items, stages);
  auto body = [&](int tid, int members, SpinBarrier&) {
    if (members == 1) return run_in_order(stages, recurrence, items, p);
    if (tid == 0) {
      for (int64_t s = 0; s < stages; ++s) {
        // Waiting for a slot, it takes items of the stages it has done.
        while (s >= slots && p.left[s - slots].load(std::memory_order_acquire) != 0) {
          size_t i = p.next.load(std::memory_order_relaxed);
          if (i < items.size() && items[i].stage < s &&
              p.next.compare_exchange_weak(i, i + 1, std::memory_order_relaxed)) {
            run_item(items, i, p);
          } else {
            pause_briefly();
          }
        }
        recurrence(s);
        p.recurred.store(s + 1, std::memory_order_release);
      }
    }
    for (size_t i; (i = p.next.fetch_add(1, std::memory_order_relaxed)) < items.size();) {
      run_item(items, i, p);
    }
  };
  run_team(threads, body);
}

}  // namespace fastlstm::cpu
