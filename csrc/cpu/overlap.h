// A recurrence on one thread overlapped with the products that follow its
// stages on the others. Where a recurrence's weights fit one core's L2, it
// runs about as fast on one core as on two (its steps are short, and two
// cores meet at a barrier every step), while the products that follow it
// scale with the cores: so one core runs the stages of the recurrence one
// after another, and the others take the products of the stages done.
// Torch-free.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace fastlstm::cpu {

// A piece of the products that follow stage `stage`. An item with `after`
// (an earlier item's index) runs once that one is done: the next stage's
// share of a block accumulated over the stages, so that each block is
// summed in stage order whoever runs it.
struct StageItem {
  int64_t stage;
  int64_t after;  // -1: none
  std::function<void()> run;
};

// Runs recurrence(s) for s = 0, 1, ... stages - 1 in order on one member of
// a team of `threads` and, on the others (and on it once the recurrence is
// done), each item once its stage is done. Stage s reuses the buffers of
// stage s - slots, whose items it waits for. Items are listed by stage.
// With one thread, each stage's items follow it at once.
void run_overlapped(int threads, int64_t stages, int64_t slots,
                    const std::function<void(int64_t)>& recurrence,
                    const std::vector<StageItem>& items);

}  // namespace fastlstm::cpu
